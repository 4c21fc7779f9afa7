"""The MN's drivers: config, state file, transports, the HoA's IPv6 host, the asyncio loop."""
import sys

# The packet buffer, allocated first thing: on a small heap a 1500-byte block is found only
# before module code fragments it. One buffer serves both ways: a received packet is handled
# (and ping answered in it) before its read returns, and the HoA's sends happen in other tasks,
# never while a packet is being handled (asyncio tasks do not interleave inside a call).
RX = bytearray(1500)
TX = RX


def forget(name):
    """Drop a module that has done its job (start-up code, the config checker) so the GC can free
    it on a 64 KB heap. Its qstrs stay; its code and objects go once nothing else holds them."""
    sys.modules.pop(name, None)
    i = name.rfind(".")
    parent = sys.modules.get(name[:i]) if i > 0 else None
    if parent is not None:
        try:
            delattr(parent, name[i + 1:])
        except (AttributeError, TypeError, KeyError):   # MicroPython: KeyError when not bound
            pass


def load(name):
    """The object `name` ("module.attribute", the module one of roam6.node's), its module imported
    now. For the node's rarely used parts (IPsec, IPv4 home address, route optimisation, home
    link, Binding Errors, the link adapter's loop): given as one string of more than 10
    characters, neither name is a qstr on the heap of a node that never loads them (an import
    statement interns both when the caller's module loads)."""
    # (the form the benches ran: with an earlier one the 32-bit bench runtime's IPv4 HoA run broke,
    # a fault of that runtime's GC that moves with the code's layout, docs/ARCHITECTURE.md "Heap")
    i = name.find(".")
    __import__("roam6.node." + name[:i])
    return getattr(sys.modules["roam6.node." + name[:i]], name[i + 1:])
