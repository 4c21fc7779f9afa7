"""`roam6 build`: real mpy-cross over the real firmware and over a small package with machine code."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from roam6_host import boards, build, mpy
from roam6_host.cli import main as cli_main
from roam6_host.errors import UserError

BOARDS = {"esp32": "xtensawin", "rp2040": "armv6m", "unix": "x64",
          "esp32s3": "xtensawin", "esp32c3": "rv32imc", "rp2350": "armv7emsp"}


def _mpy_files(out):
    found = []
    for root, _d, files in os.walk(out):
        found += [os.path.join(root, f) for f in files if f.endswith(".mpy")]
    return found


@pytest.mark.parametrize("board,arch", sorted(BOARDS.items()))
def test_bundle_of_the_real_firmware(tmp_path, board, arch):
    out = tmp_path / board
    index = build.build_bundle(board, out_dir=str(out), natmod=False, log=lambda *a: None)
    excluded = boards.load_board(board).get("exclude", {})
    sources = [s for s in build.package_sources(boards.PACKAGE_DIR) if s not in excluded]
    for rel in excluded:
        assert not (out / (rel[:-3] + ".mpy")).exists()
    # every module compiled, each with a valid v6 header; machine code, if any, for this arch only
    for rel in sources:
        path = out / (rel[:-3] + ".mpy")
        assert path.is_file(), rel
        head = mpy.read_header(str(path))
        assert head["version"] == 6
        assert head["arch"] in (None, arch), (rel, head)
    assert index["arch"] == arch and index["board"] == board
    # board files copied as they are, board.json included; its modules but main.py compiled
    # (the board imports link.mpy without compiling on its small heap)
    assert json.loads((out / "board.json").read_text())["mpy_arch"] == arch
    for name in boards.board_files(boards.load_board(board)):
        if name.endswith(".py") and name != "main.py":
            assert not (out / name).exists()
            assert mpy.read_header(str(out / (name[:-3] + ".mpy")))["version"] == 6
            continue
        assert (out / name).read_bytes() == open(os.path.join(boards.BOARDS_DIR, board, name), "rb").read()
    # the index sums what is on disk
    assert index["mpy_bytes"] == sum(os.path.getsize(p) for p in _mpy_files(out))
    assert json.loads((out / "bundle.json").read_text()) == index


def _viper_package(tmp_path):
    pkg = tmp_path / "src" / "vpkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("X = 1\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "fast.py").write_text(
        "import micropython\n@micropython.viper\ndef add1(x: int) -> int:\n    return x + 1\n")
    return pkg


@pytest.mark.parametrize("board,arch", sorted(BOARDS.items()))
def test_machine_code_carries_the_board_arch(tmp_path, board, arch):
    pkg = _viper_package(tmp_path)
    out = tmp_path / "out"
    build.build_bundle(board, out_dir=str(out), natmod=False, package_dir=str(pkg), log=lambda *a: None)
    fast = mpy.read_header(str(out / "vpkg" / "sub" / "fast.mpy"))
    plain = mpy.read_header(str(out / "vpkg" / "__init__.mpy"))
    assert fast["arch"] == arch and fast["version"] == 6 and fast["sub_version"] >= 1
    assert plain["arch"] is None and plain["version"] == 6


def test_unix_bundle_runs_on_micropython(tmp_path):
    """The x64 viper .mpy really loads and runs on the MicroPython unix port."""
    pkg = _viper_package(tmp_path)
    out = tmp_path / "out"
    build.build_bundle("unix", out_dir=str(out), natmod=False, package_dir=str(pkg), log=lambda *a: None)
    exe = os.path.join(os.path.dirname(sys.executable), "micropython")
    proc = subprocess.run([exe, "-c", "import vpkg.sub.fast as f; print(f.add1(41))"], cwd=str(out),
                          env=dict(os.environ, MICROPYPATH=""), capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "42", proc.stderr
    # and the real firmware's compiled package imports there too
    real = tmp_path / "real"
    build.build_bundle("unix", out_dir=str(real), natmod=False, log=lambda *a: None)
    proc = subprocess.run([exe, "-c", "import roam6, roam6.compat; print(roam6.__version__)"], cwd=str(real),
                          env=dict(os.environ, MICROPYPATH=""), capture_output=True, text=True, timeout=60)
    import roam6
    assert proc.stdout.strip() == roam6.__version__, proc.stderr


def test_package_json_lists_every_library_file_relative(tmp_path):
    out = tmp_path / "b"
    index = build.build_bundle("rp2040", out_dir=str(out), natmod=False, log=lambda *a: None)
    doc = json.loads((out / "package.json").read_text())
    import roam6
    assert doc["version"] == roam6.__version__ and doc["deps"] == []
    targets = [t for t, _u in doc["urls"]]
    assert sorted(targets) == sorted(p for p in index["files"] if p.endswith(".mpy"))
    for target, url in doc["urls"]:
        assert not os.path.isabs(url) and (out / url).is_file()
    assert "main.py" not in targets and "board.json" not in targets


def test_manifest_names_sources_relative_to_itself(tmp_path):
    out = tmp_path / "m"
    build.build_bundle("esp32", out_dir=str(out), manifest=True, natmod=False, log=lambda *a: None)
    text = (out / "manifest.py").read_text()
    calls = []
    # execute it the way MicroPython's manifestfile.py does: the functions are globals
    def package(path, files=None, base_path=".", opt=None):
        calls.append(("package", path, os.path.normpath(os.path.join(str(out), base_path))))
        for f in files or ():
            assert os.path.isfile(os.path.join(str(out), base_path, path, f)), f

    def module(path, base_path=".", opt=None):
        calls.append(("module", path, os.path.normpath(os.path.join(str(out), base_path))))

    exec(compile(text, "manifest.py", "exec"), {"package": package, "module": module,
                                                "metadata": lambda **kw: calls.append(("metadata", kw))})
    assert ("package", "roam6", boards.FIRMWARE_DIR) in calls
    assert "json.py" not in text and '"wire/mh.py",' not in text and '"core/bul.py",' in text  # exclusions hold
    meta = [c for c in calls if c[0] == "metadata"][0][1]
    import roam6
    assert meta["version"] == roam6.__version__
    for kind, name, base in [c for c in calls if c[0] == "module"]:
        assert os.path.isfile(os.path.join(base, name)) and name != "main.py"
    assert not (tmp_path / "n" / "manifest.py").exists()
    build.build_bundle("esp32", out_dir=str(tmp_path / "n"), natmod=False, log=lambda *a: None)
    assert not (tmp_path / "n" / "manifest.py").exists()


def test_rebuild_replaces_stale_files_but_never_clobbers_other_folders(tmp_path):
    out = tmp_path / "b"
    build.build_bundle("unix", out_dir=str(out), natmod=False, log=lambda *a: None)
    (out / "roam6" / "gone.mpy").write_bytes(b"M\x06\x00\x1f")
    build.build_bundle("unix", out_dir=str(out), natmod=False, log=lambda *a: None)
    assert not (out / "roam6" / "gone.mpy").exists()
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="not a roam6 bundle"):
        build.build_bundle("unix", out_dir=str(other), natmod=False, log=lambda *a: None)
    assert (other / "notes.txt").read_text() == "keep me"


def test_cli_reports_size_and_skipped_natmod(tmp_path, capsys):
    rc = cli_main(["build", "--board", "esp32", "--out", str(tmp_path / "e")])
    out = capsys.readouterr().out
    assert rc == 0
    index = json.loads((tmp_path / "e" / "bundle.json").read_text())
    assert ".mpy total %d bytes" % index["mpy_bytes"] in out
    assert "64 KB goal" in out
    # either the native module was built into the bundle, or the output says plainly why not
    if index["natmod"]["files"]:
        assert all((tmp_path / "e" / f).is_file() for f in index["natmod"]["files"])
    else:
        assert "native module: SKIPPED for xtensawin" in out and index["natmod"]["skipped"]


def test_cli_errors_are_clear(capsys):
    assert cli_main(["build", "--board", "esp8266"]) == 2
    err = capsys.readouterr().err
    assert "unknown board 'esp8266'" in err and "esp32" in err and "Traceback" not in err
    assert cli_main(["build"]) == 2
    assert "needs --board" in capsys.readouterr().err


@pytest.mark.parametrize("board,arch", [("unix", "x64"), ("rp2040", "armv6m")])
def test_native_module_joins_the_bundle_where_a_compiler_exists(tmp_path, board, arch):
    """gcc and arm-none-eabi-gcc are in deps/apt.txt, so these two arches always build here."""
    out = tmp_path / board
    index = build.build_bundle(board, out_dir=str(out), natmod=True, log=lambda *a: None)
    assert index["natmod"] == {"files": ["roam6_native.mpy"], "skipped": None}
    head = mpy.read_header(str(out / "roam6_native.mpy"))
    assert head["arch"] == arch and head["version"] == 6
    assert "roam6_native.mpy" in [t for t, _u in json.loads((out / "package.json").read_text())["urls"]]


def test_build_natmod_command(tmp_path, capsys):
    assert cli_main(["build", "natmod", "--arch", "x64", "--out", str(tmp_path)]) == 0
    path = tmp_path / "x64" / "roam6_native.mpy"
    assert mpy.read_header(str(path))["arch"] == "x64" and str(path) in capsys.readouterr().out
    if not shutil.which("xtensa-esp32-elf-gcc"):
        assert cli_main(["build", "natmod", "--board", "esp32", "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert "xtensa-esp32-elf-gcc not found" in err and "ESP-IDF" in err
    assert cli_main(["build", "natmod"]) == 2
    assert "needs --arch" in capsys.readouterr().err


def test_manifest_read_by_micropythons_own_manifestfile(tmp_path):
    """tools/manifestfile.py of the MicroPython tree natmod_build uses (the pinned PyPI sdist)
    executes the manifest and lists every roam6 module to freeze, and link.py, not main.py."""
    from roam6_host import natmod_build
    import importlib.util

    mpy_dir = natmod_build.micropython_dir()
    spec = importlib.util.spec_from_file_location("manifestfile", os.path.join(mpy_dir, "tools", "manifestfile.py"))
    mf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mf)
    out = tmp_path / "m"
    build.build_bundle("rp2040", out_dir=str(out), manifest=True, natmod=False, log=lambda *a: None)
    m = mf.ManifestFile(mf.MODE_FREEZE, {"MPY_DIR": mpy_dir,
                                         "MPY_LIB_DIR": os.path.join(mpy_dir, "lib", "micropython-lib"),
                                         "PORT_DIR": mpy_dir, "BOARD_DIR": mpy_dir})
    m.execute(str(out / "manifest.py"))
    targets = sorted(f.target_path for f in m.files())
    excluded = boards.load_board("rp2040")["exclude"]
    kept = [s for s in build.package_sources(boards.PACKAGE_DIR) if s not in excluded]
    assert excluded and targets == sorted(kept + ["link.py"])
    for f in m.files():
        assert os.path.isfile(f.full_path)


def test_board_exclusions_leave_out_what_the_board_never_loads(tmp_path):
    esp = build.build_bundle("esp32", out_dir=str(tmp_path / "e"), natmod=False, log=lambda *a: None)
    unix = build.build_bundle("unix", out_dir=str(tmp_path / "u"), natmod=False, log=lambda *a: None)
    assert "roam6/wire/json.mpy" not in esp["files"] and "roam6/node/ip6.mpy" not in esp["files"]
    assert "roam6/wire/json.mpy" not in unix["files"] and "roam6/node/ip6.mpy" in unix["files"]
    assert esp["excluded"] == sorted(boards.load_board("esp32")["exclude"])
    assert esp["package_mpy_bytes"] == sum(v["size"] for k, v in esp["files"].items() if k.endswith(".mpy"))


def test_a_top_level_import_of_an_excluded_module_is_refused(tmp_path):
    pkg = tmp_path / "p"
    (pkg / "node").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "node" / "__init__.py").write_text("")
    (pkg / "node" / "extra.py").write_text("X = 1\n")
    (pkg / "node" / "lazy.py").write_text("def f():\n    from .extra import X\n    return X\n")
    sources = build.package_sources(str(pkg))
    kept = build.apply_exclusions(sources, str(tmp_path), {"p/node/extra.py": "not on this board"})
    assert "p/node/extra.py" not in kept and "p/node/lazy.py" in kept     # a lazy import is the way
    (pkg / "node" / "eager.py").write_text("from .extra import X\n")
    with pytest.raises(UserError, match="p/node/eager.py imports p.node.extra"):
        build.apply_exclusions(build.package_sources(str(pkg)), str(tmp_path), {"p/node/extra.py": "not on this board"})
    (pkg / "node" / "eager.py").write_text("import p.node.extra\n")
    with pytest.raises(UserError, match="not on this board"):
        build.apply_exclusions(build.package_sources(str(pkg)), str(tmp_path), {"p/node/extra.py": "not on this board"})
    with pytest.raises(UserError, match="not in the firmware"):
        build.apply_exclusions(sources, str(tmp_path), {"p/nope.py": "x"})


def test_cli_all_boards_reports_mpy_per_board(tmp_path, capsys):
    assert cli_main(["build", "--board", "all", "--no-natmod", "--out", str(tmp_path)]) == 0
    table = capsys.readouterr().out.split("board     roam6 .mpy", 1)[1].splitlines()[1:]
    rows = {r.split()[0]: r.split() for r in table if r.strip()}
    assert sorted(rows) == sorted(boards.board_names())
    for name, (_n, package, native, total, verdict) in rows.items():
        index = json.loads((tmp_path / name / "bundle.json").read_text())
        assert int(total) == index["mpy_bytes"] == int(package) + int(native) and native == "0"
        assert verdict == ("within" if index["mpy_bytes"] <= 64 * 1024 else "OVER")
    # what a board cannot use stays out: an ESP32 (IPv4 only) gets no route optimisation or ip6
    esp32 = json.loads((tmp_path / "esp32" / "bundle.json").read_text())["files"]
    assert "roam6/core/bul.mpy" in esp32 and "roam6/wire/binding.mpy" in esp32
    assert not [f for f in esp32 if f.startswith(("roam6/core/rr", "roam6/node/ip6", "roam6/wire/mh"))]


def test_release_bundle_drops_line_numbers_and_debug_keeps_them(tmp_path):
    """The default bundle is mpy-cross -O3 (no line-number tables: smaller .mpy, less heap on the
    board), `--debug` (line_numbers=True) is -O0; both say which in bundle.json."""
    rel = build.build_bundle("esp32", out_dir=str(tmp_path / "r"), natmod=False, log=lambda *a: None)
    dbg = build.build_bundle("esp32", out_dir=str(tmp_path / "d"), natmod=False, log=lambda *a: None,
                             line_numbers=True)
    assert (rel["mpy_opt"], dbg["mpy_opt"]) == (3, 0)
    assert json.loads((tmp_path / "r" / "bundle.json").read_text())["mpy_opt"] == 3
    assert set(rel["files"]) == set(dbg["files"])
    f = "roam6/core/bul.mpy"
    assert rel["files"][f]["size"] < dbg["files"][f]["size"]
    assert rel["mpy_bytes"] < dbg["mpy_bytes"] * 0.97


def test_romfs_image_mounts_on_micropython_and_its_bytecode_imports(tmp_path):
    """`roam6 build --romfs`: every .mpy of the bundle in one ROMFS image, which the unix port's
    vfs.VfsRom mounts and imports from (the firmware's own reader is the check)."""
    out = tmp_path / "b"
    assert cli_main(["build", "--board", "esp32", "--out", str(out), "--romfs", "--no-natmod"]) == 0
    index = json.loads((out / build.INDEX).read_text())
    img = (out / "roam6.romfs").read_bytes()
    assert index["romfs_bytes"] == len(img) and img[:3] == b"\xd2\xcd\x31"
    assert "roam6.romfs" not in index["files"]                   # never copied as a file
    exe = os.path.join(os.path.dirname(sys.executable), "micropython")
    code = ("import vfs, sys\nvfs.mount(vfs.VfsRom(open('%s', 'rb').read()), '/rom')\nsys.path[:] = ['/rom']\n"
            "import os, roam6.core.bul, link\nprint(len(os.listdir('/rom/roam6/core')), roam6.core.bul.__file__)\n"
            % (out / "roam6.romfs"))
    proc = subprocess.run([exe, "-c", code], cwd=str(tmp_path), env=dict(os.environ, MICROPYPATH=""),
                          capture_output=True, text=True, timeout=60)
    n = len(os.listdir(out / "roam6" / "core"))
    assert proc.stdout.split() == [str(n), "/rom/roam6/core/bul.mpy"], proc.stdout + proc.stderr
