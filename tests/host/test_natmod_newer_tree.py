"""ROAM6_MPY_DIR at a newer MicroPython tree: 1.29 renamed the native .mpy that mpy_ld.py links
from $(BUILD)/$(MOD).native.mpy to $(BUILD)/$(MOD).mpy, and natmod_build asked make for the old
name ("No rule to make target"). No 1.29 tree can be fetched here (no internet but the package
registries), so the newer layout is made from the pinned sdist's tree with its dynruntime.mk's
link rule renamed exactly that way (the rest of the tree linked, not copied). The real compiler
builds against it; the result must be the bytes the pinned tree gives."""
import os
import shutil

import pytest

from roam6_host import natmod_build
from roam6_host.errors import UserError

OLD, NEW = "$(BUILD)/$(MOD).native.mpy", "$(BUILD)/$(MOD).mpy"


def _tree(tmp_path, edit):
    src = natmod_build.micropython_dir()
    dst = tmp_path / "micropython"
    (dst / "py").mkdir(parents=True)
    for n in os.listdir(src):
        if n != "py":
            os.symlink(os.path.join(src, n), dst / n)
    for n in os.listdir(os.path.join(src, "py")):
        if n != "dynruntime.mk":
            os.symlink(os.path.join(src, "py", n), dst / "py" / n)
    with open(os.path.join(src, "py", "dynruntime.mk")) as f:
        mk = f.read()
    assert mk.count(OLD) == 2          # the link rule and the merge rule's input
    (dst / "py" / "dynruntime.mk").write_text(edit(mk))
    return str(dst)


def test_a_tree_with_the_1_29_name_builds_the_same_module(tmp_path, monkeypatch):
    pinned = natmod_build.build_natmod("x64", str(tmp_path / "pinned"))
    with open(pinned, "rb") as f:
        want = f.read()
    newer = _tree(tmp_path, lambda mk: mk.replace(OLD, NEW))
    monkeypatch.setenv("ROAM6_MPY_DIR", newer)
    assert natmod_build.link_target(newer) == NEW
    path = natmod_build.build_natmod("x64", str(tmp_path / "newer"))
    with open(path, "rb") as f:
        assert f.read() == want
    obj = natmod_build.obj_dir_for("x64", newer)
    assert obj != os.path.join(natmod_build.cache_dir(), "natmod-obj", "x64")   # its own object files
    assert os.path.isfile(os.path.join(obj, "roam6_native.mpy"))                # linked under the new name
    assert not os.path.exists(os.path.join(obj, "roam6_native.native.mpy"))
    shutil.rmtree(obj)


def test_a_tree_with_neither_name_is_a_clear_error(tmp_path, monkeypatch):
    odd = _tree(tmp_path, lambda mk: mk.replace(OLD, "$(BUILD)/$(MOD).linked.mpy"))
    monkeypatch.setenv("ROAM6_MPY_DIR", odd)
    with pytest.raises(UserError) as e:
        natmod_build.build_natmod("x64", str(tmp_path / "out"))
    assert "has no rule for $(BUILD)/$(MOD).native.mpy or $(BUILD)/$(MOD).mpy" in e.value.message
    assert "unset ROAM6_MPY_DIR" in e.value.hint
