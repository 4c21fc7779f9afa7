"""Child processes the host tools start and must leave nothing of."""
import subprocess


def end(proc, grace=5.0):
    """Stop proc: SIGTERM, up to `grace` seconds to go, then SIGKILL; reaped either way."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
