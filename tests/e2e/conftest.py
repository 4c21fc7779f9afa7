"""End-to-end tests of the mobile node: the real MicroPython MN, the real `roam6 ha` process, the
bench namespaces. Each test has its own namespace prefix; nothing is left behind, even on failure."""
import os
import secrets

import pytest

from roam6_hil.netns import cleanup_prefix, list_namespaces
from roam6_hil.topology import Bench


@pytest.fixture
def bench():
    if os.geteuid() != 0:
        pytest.skip("end-to-end tests need root (network namespaces); `make test` runs as root")
    prefix = "r6t%s-" % secrets.token_hex(2)
    try:
        with Bench(prefix=prefix) as b:
            yield b
    finally:
        cleanup_prefix(prefix)
        left = [n for n in list_namespaces() if n.startswith(prefix)]
        assert not left, "namespaces left behind: %s" % left
