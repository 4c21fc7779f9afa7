"""The HA's JSON event log never blocks the HA when nobody reads its stdout."""
import json
import os
import threading

from roam6_host.ha.driver import Logger


def test_full_pipe_drops_lines_instead_of_blocking():
    r, w = os.pipe()
    stream = os.fdopen(w, "w")
    log = Logger(stream)
    done = threading.Event()

    def flood():
        for i in range(5000):               # ~ 400 KB: far more than a pipe holds
            log("binding_refreshed", hoa="2001:db8:aa::100", seq=i, pad="x" * 40)
        done.set()

    threading.Thread(target=flood, daemon=True).start()
    assert done.wait(20), "the logger blocked on a full pipe"
    assert log.lost > 0
    with os.fdopen(r, "rb") as rf:
        os.set_blocking(rf.fileno(), False)
        data = rf.read(1 << 20) or b""
    lines = data.decode().splitlines()
    assert lines and all(json.loads(ln)["ev"] == "binding_refreshed" for ln in lines)   # whole lines only
    stream.close()


def test_once_per_key():
    import io
    buf = io.StringIO()
    log = Logger(buf)
    for _ in range(3):
        log.once(("198.18.1.10", "spi"), "bu_dropped", reason="spi: unknown SPI 7")
    log.once(("198.18.1.11", "spi"), "bu_dropped", reason="spi: unknown SPI 7")
    assert [json.loads(x)["reason"] for x in buf.getvalue().splitlines()] == ["spi: unknown SPI 7"] * 2


def test_closed_stdout_does_not_raise():
    r, w = os.pipe()
    stream = os.fdopen(w, "w")
    log = Logger(stream)
    os.close(r)                      # the reader went away: writes get EPIPE
    log("ready")
    log("binding_added", hoa="2001:db8:aa::100")
    assert log.lost == 2
    try:
        stream.close()
    except OSError:
        pass
