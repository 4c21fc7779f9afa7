"""`roam6 build --board rp2040 --with ipsec`: the IPsec-capable Pico W bundle (board.json "with"),
its size against the 64 KB goal without the native module, and a clear error for a board without
that variant."""
import json

from roam6_host.cli import main as cli_main


def test_rp2040_with_ipsec_fits_64k_and_carries_the_node_ipsec(tmp_path, capsys):
    out = tmp_path / "b"
    assert cli_main(["build", "--board", "rp2040", "--with", "ipsec", "--no-natmod", "--out", str(out)]) == 0
    index = json.loads((out / "bundle.json").read_text())
    files = index["files"]
    for m in ("roam6/node/ipsecglue.mpy", "roam6/core/ipsecreg.mpy", "roam6/ipsec/ikev2.mpy", "roam6/ipsec/esp.mpy"):
        assert m in files, m
    for m in ("roam6/node/haswitch.mpy", "roam6/bootstrap/dhcp6.mpy", "roam6/ipsec/drive.mpy"):
        assert m not in files, m
    assert index["mpy_bytes"] <= 64 * 1024, index["mpy_bytes"]


def test_a_variant_the_board_does_not_offer_is_refused(capsys):
    assert cli_main(["build", "--board", "esp32", "--with", "ipsec", "--no-natmod", "--out", "/nonexistent/x"]) != 0
    assert "has no variant --with ipsec" in capsys.readouterr().err
