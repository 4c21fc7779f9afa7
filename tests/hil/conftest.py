"""Bench tests: each gets a unique namespace prefix, and every namespace with that prefix is gone
after the test, even when it fails."""
import os

import pytest

from roam6_hil.netns import cleanup_prefix, list_namespaces


@pytest.fixture
def prefix():
    if os.geteuid() != 0:
        pytest.skip("bench tests need root (network namespaces); `make test` runs as root")
    p = "r6t%s-" % os.urandom(2).hex()
    yield p
    cleanup_prefix(p)
    left = [n for n in list_namespaces() if n.startswith(p)]
    assert not left, "namespaces left behind: %s" % left
