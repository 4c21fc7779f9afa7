// The real UDP sockets behind the emscripten sockets of bench_footprint32_run.mjs (a worker thread: the main
// thread is blocked inside MicroPython). Test double for the NETWORK only.
import { parentPort, workerData } from "node:worker_threads";
import dgram from "node:dgram";

const socks = new Map();
const wake = new Int32Array(workerData.wake);
function deliver(id, msg, rinfo) {
  out.postMessage({ id, data: msg, addr: rinfo.address, port: rinfo.port });
  Atomics.add(wake, 0, 1);
  Atomics.notify(wake, 0);
}
let out = null;
parentPort.on("message", (m) => {
  if (m.op === "port") { out = m.port; return; }
  if (m.op === "open") {
    const s = dgram.createSocket(m.family === 10 ? "udp6" : "udp4");
    s.on("message", (msg, rinfo) => deliver(m.id, msg, rinfo));
    s.on("error", () => {});
    socks.set(m.id, s);
    if (m.addr !== undefined) s.bind({ address: m.addr, port: m.port || 0 });
  } else if (m.op === "send") {
    const s = socks.get(m.id);
    if (s) s.send(m.data, m.port, m.addr);
  } else if (m.op === "close") {
    const s = socks.get(m.id);
    if (s) { socks.delete(m.id); s.close(); }
  } else if (m.op === "exit") {
    for (const s of socks.values()) s.close();
    process.exit(0);
  }
});
