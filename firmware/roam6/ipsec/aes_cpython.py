"""AES-CBC on CPython (host tools and tests), from the `cryptography` package; roam6.ipsec.prims
imports it only where MicroPython's `cryptolib` is missing (its names are not interned on the MN)."""
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def aes_cbc(key, iv, data, encrypt):
    c = Cipher(algorithms.AES(bytes(key)), modes.CBC(bytes(iv)))
    op = c.encryptor() if encrypt else c.decryptor()
    return op.update(bytes(data)) + op.finalize()


def ecb(key):
    """An AES-ECB encrypt function (whole blocks) for AES-GCM's counter blocks (roam6.ipsec.gcm)."""
    enc = Cipher(algorithms.AES(bytes(key)), modes.ECB()).encryptor()
    return lambda data: enc.update(bytes(data))
