# roam6: two commands. `make demo` sets up and runs the virtual roaming bench; `make test` sets up
# and runs every test (ruff, CPython pytest, and the firmware tests again under real MicroPython).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PKGS := $(shell grep -v '^\#' deps/apt.txt)
REPORT ?= reports/demo
PYTEST_ARGS ?=

.PHONY: demo test lint setup setup-apt setup-venv natmod footprint32 clean

demo: setup
	$(SUDO) $(VENV)/bin/roam6 demo --report $(REPORT)

test: setup natmod footprint32 lint
	$(SUDO) $(PY) -m pytest -q $(PYTEST_ARGS)

# pyflakes and pycodestyle errors, 120 columns (pyproject.toml [tool.ruff]): fails the test run
lint: setup
	$(PY) -m ruff check .

setup: setup-apt setup-venv

# The native module for this machine (x64, which the firmware tests load) and the RP2040 (armv6m,
# proves the Debian cross build). Fetches the MicroPython build files once; cached, ~0.1 s after.
natmod: setup
	$(PY) -m roam6_host.natmod_build x64 armv6m

# The 32-bit MicroPython (unix port for wasm32, run by node) that `roam6 bench footprint` measures
# the MN's heap on; fetched once into build/footprint32/ so its test runs (never fails the build).
footprint32: setup
	$(PY) -m roam6_host.bench_footprint32 --fetch

# Debian packages: installed only when one is missing, so a ready machine skips apt entirely.
setup-apt:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; \
	fi

setup-venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "roam6 needs $(PYTHON) (the MicroPython unix wheel is built for CPython 3.11): apt-get install python3.11 python3.11-venv"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) build reports .pytest_cache
