import os

import pytest

from roam6_host import natmod_build

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="session")
def natmod_root():
    """build/natmod with the x64 module built (cached: make rebuilds only what changed)."""
    natmod_build.build_natmod("x64")
    return natmod_build.DEFAULT_OUT
