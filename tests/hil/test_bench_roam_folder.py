"""`roam6 bench roam` without --report makes a temp folder for the report: a run that is refused
(a kept `hil up` bench, a bad value, not root) leaves none behind. No namespaces: these runs stop
before the bench goes up."""
import argparse
import os
import signal

import pytest

from roam6_host.errors import UserError
from roam6_hil import bench_roam, cli, netns, topology
from roam6_hil.scenarios import roam


@pytest.fixture
def tmpdir_only(tmp_path, monkeypatch):
    """tempfile's folder is an empty one of our own, no kept bench, no bench may go up."""
    import tempfile
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setattr(cli, "STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(topology.Bench, "__enter__", lambda self: pytest.fail("the bench would go up"))
    saved = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    yield tmp
    signal.signal(signal.SIGINT, saved[0])
    signal.signal(signal.SIGTERM, saved[1])


def _args(**kw):
    a = dict(roams=1, profile="esp32", addressing="static", traffic="echo", loss=0.0, report=None, prefix="r6b-")
    a.update(kw)
    return argparse.Namespace(**a)


def test_refused_for_a_kept_bench_leaves_no_temp_folder(tmpdir_only, tmp_path, monkeypatch):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "r6b-json").write_text("{}")           # `roam6 hil up --prefix r6b-` was run
    monkeypatch.setattr(netns, "list_namespaces", lambda: ["r6b-core", "r6b-board"])
    with pytest.raises(UserError) as e:
        bench_roam.run(_args())
    assert "a bench from `roam6 hil up` is up" in str(e.value)
    assert os.listdir(tmpdir_only) == []


def test_refused_for_a_bad_value_leaves_no_temp_folder(tmpdir_only):
    with pytest.raises(UserError, match="--roams"):
        bench_roam.run(_args(roams=0))
    assert os.listdir(tmpdir_only) == []


def test_refused_when_not_root_leaves_no_folder(tmpdir_only, tmp_path, monkeypatch):
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    with pytest.raises(UserError, match="needs root"):
        bench_roam.run(_args())
    assert os.listdir(tmpdir_only) == []
    with pytest.raises(UserError, match="needs root"):                # `hil run roam --report DIR` too
        bench_roam.run(_args(report=str(tmp_path / "rep")))
    assert not (tmp_path / "rep").exists()


def test_a_run_that_failed_on_the_way_keeps_its_logs(tmpdir_only, monkeypatch):
    def fails(args, quiet=False):
        os.makedirs(os.path.join(args.report, "bench"))
        with open(os.path.join(args.report, "bench", "ha.log"), "w") as f:
            f.write("what went wrong\n")
        raise RuntimeError("the board got no address on apC")
    monkeypatch.setattr(roam, "run", fails)
    with pytest.raises(UserError) as e:
        bench_roam.run(_args())
    assert e.value.exit_code == 1
    (kept,) = os.listdir(tmpdir_only)
    assert kept.startswith("roam6-bench-roam-") and os.path.exists(os.path.join(tmpdir_only, kept, "bench", "ha.log"))
