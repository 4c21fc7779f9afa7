"""Wireshark's view of roam6's IKEv2/ESP: tshark options that give it the keys of one initiator
(roam6.ipsec.ikev2.Initiator after child_up), so a capture's IKE_AUTH and ESP-in-UDP packets are
decrypted and checked by an independent dissector (tests/ipsec/test_strongswan_interop.py)."""
import subprocess

_ENCR = {16: ("AES-CBC-128 [RFC3602]", "AES-CBC [RFC3602]")}
_INTEG = {2: ("HMAC_SHA1_96 [RFC2404]", "HMAC-SHA-1-96 [RFC2404]"),
          12: ("HMAC_SHA2_256_128 [RFC4868]", "HMAC-SHA-256-128 [RFC4868]")}


def key_options(ike, mn_ip, peer_ip):
    """-o options for `tshark`: the IKE SA's SK_e/SK_a and both ESP SAs (mn_ip, peer_ip: text)."""
    ike_encr, esp_encr = _ENCR[len(ike.sk["ei"])]
    ike_integ, esp_integ = _INTEG[ike.integ_id]
    fam = "IPv6" if ":" in mn_ip else "IPv4"
    opts = ["-o", "uat:ikev2_decryption_table:%s,%s,%s,%s,\"%s\",%s,%s,\"%s\"" % (
        ike.spi_i.hex(), ike.spi_r.hex(), ike.sk["ei"].hex(), ike.sk["er"].hex(), ike_encr,
        ike.sk["ai"].hex(), ike.sk["ar"].hex(), ike_integ),
        "-o", "esp.enable_encryption_decode:TRUE", "-o", "esp.enable_authentication_check:TRUE"]
    for sa, src, dst in ((ike.esp_out, mn_ip, peer_ip), (ike.esp_in, peer_ip, mn_ip)):
        opts += ["-o", "uat:esp_sa:\"%s\",\"%s\",\"%s\",\"0x%08x\",\"%s\",\"0x%s\",\"%s\",\"0x%s\"" % (
            fam, src, dst, sa.spi, esp_encr, sa.enc_key.hex(), esp_integ, sa.integ_key.hex())]
    return opts


def dissect(pcap, options, *extra):
    p = subprocess.run(["tshark", "-r", pcap] + options + list(extra), capture_output=True, text=True, timeout=60)
    if p.returncode:
        raise RuntimeError("tshark failed: %s" % p.stderr.strip())
    return p.stdout
