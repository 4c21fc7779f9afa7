"""Make before break for the Home Agent Switch over udp4/udp6 (RFC 5142 §5): register with the new
HA first, then remove the binding at the old one (docs/PROTOCOL-NOTES.md §11.14). Loaded by
`haswitch.go` on a switch only; a bundle without it (rp2040: board.json) switches break before make."""
import asyncio

from .transport import read_each, sleep_ms

# Free heap below which the switch goes break before make at once: both tunnels open at a time, and
# after a refusal the deregistration's BU still to build. At 8.6 KB free (the 64-bit unix port under
# -X heapsize=64K) that BU ran out of memory in 2 runs of 10 (tests/e2e/test_ha_switch.py).
MIN_FREE = 12288


def start(node, target, ha4, old, kept, point, dereg_bu, busy):
    """udp4/udp6: register with `target` first, keeping the tunnel socket to the old HA open and
    read (its downlink delivered: the home link's router follows the new HA only after its NA)
    until the new binding is made; then the lifetime-0 BU to the old HA over that same socket.
    busy[0] is 1 until done: haswitch.watch must not take the new HA's refusal (134, which puts
    the BU's back-off at its cap) for a dead HA and go on to the next of the list (the old one).
    True once started; False (no memory for it) when the caller must switch break before make."""
    try:
        from gc import collect, mem_free  # (MicroPython's; free counts garbage not yet collected
        if mem_free() < MIN_FREE:         # as in use)
            collect()
            if mem_free() < MIN_FREE:
                return False
    except ImportError:
        pass
    up = node.uplink
    olds = up.tasks                       # (cancelled by _mbb: the caller may be one of them)
    try:                                  # what allocates first: False on a MemoryError, nothing
        got = [0]                         # changed (haswitch.go: break before make); the task
        ha6 = old[0]                      # runs only after this returns
        rx = node.rx

        def deliver(n):                   # the old HA's BA (MH type 6 from it) ends the retries
            if n > 42 and rx[6] == 135 and rx[42] == 6 and bytes(rx[8:24]) == ha6:
                got[0] += 1
            else:
                node.packet_in(n)
        ks = [k for k in up.transports if up.transports[k] is kept]
        asyncio.create_task(_mbb(node, target, ha4, old, kept, olds, deliver, got, point, dereg_bu, busy))
    except MemoryError:
        return False
    busy[0] = 1
    up.tasks = []
    for k in ks:
        del up.transports[k]              # (not closed by _point)
    return True


async def _mbb(node, target, ha4, old, kept, olds, deliver, got, point, dereg_bu, busy):
    reg = node.reg
    ha6, _ha4, tr, coa = old
    refused = False
    for t in olds:
        t.cancel()
    task = asyncio.create_task(read_each(kept.sock, node.rx, deliver))
    try:
        point(node, target, ha4, "switch", False)
        node.moved(coa, tr)               # the BU to the new HA
        new = node.uplink.active
        if new is not None:               # the data goes by the old HA until the new one binds us
            new.send = kept.send          # (its BUs: send_mh, the class's)
        t0 = node.now()
        while reg.ha == target and reg.state != 2:          # 2: BOUND (core/bul.py)
            await sleep_ms(2)
            if reg.timeout_ms >= reg.max_bindack_ms or node.now() - t0 > 3000:
                # refused (134: the old HA defends the HoA, the new one runs DAD) or silent:
                # break before make after all
                refused = True
                break
        if new is not None:
            del new.send
        if not refused:
            await sleep_ms(100)           # the home link's router follows the new HA's NA first
        for _ in range(3):
            p = dereg_bu(node, ha6, coa, False)
            if p is None:
                break
            kept.send(p)
            for k in range(120):
                await sleep_ms(2 if k < 25 else 10)
                if got[0]:
                    break
            if got[0]:
                break
        if refused and reg.ha == target and reg.state != 2:
            node.moved(coa, tr)           # the old binding gone: the new HA's DAD can pass now
    except MemoryError:
        node.log("error", reason="no memory for the deregistration at the old HA")
    finally:
        busy[0] = 0
        task.cancel()
        kept.close()
