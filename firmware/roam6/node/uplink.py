"""The node's uplink: which transport carries its packets to the HA now, opened from the care-of
address, and the tasks reading it (every datagram to the node's one demultiplexer)."""
import asyncio

from .transport import UdpTransport, addr_text, read_each


class Uplink:
    """The node's way to the HA: its transports (made when first asked for: those the config
    allows, and udp6 from the HoA at home), the one carrying data now (`active`) and the tasks
    reading it. Datagrams go to node.packet_in(n) (in node.rx); ip6's link side to
    ip6.link_in(node, buf, n).

    On a switch to another transport the previous one is kept a while (make before break,
    `old`, node/switchover.py): still read, and carrying data until the new BU has left.
    """
    old = None                  # (a class default: nothing in the instance until a switch)

    def __init__(self, node):
        self.node = node
        self.transports = {}
        self.active = None
        self.tasks = []

    def open(self, name, coa):
        """From now on carry data over transport `name` from care-of address `coa` (raw bytes): a
        fresh socket bound to it, read by a new task; the previous transport closed (another one
        is kept until the BA: switchover.py). Returns the transport, or None (logged as an error)
        when that cannot be."""
        node = self.node
        cfg = node.cfg
        tr = self.transports.get(name)
        if tr is None:
            allowed = name in cfg.transports
            try:
                if name == "udp4" and allowed and cfg.ha_ipv4 is not None:
                    tr = UdpTransport("udp4", addr_text(cfg.ha_ipv4))
                elif name == "udp6" and (allowed or coa == cfg.hoa):   # at home: deregistration
                    tr = UdpTransport("udp6", addr_text(cfg.ha))
                elif name == "ip6" and allowed:
                    from .ip6 import Ip6Transport        # unix only: raw and packet sockets
                    tr = Ip6Transport(addr_text(cfg.ha), cfg.iface)
                else:
                    node.log("error", reason="transport %s not available (config has no address "
                                             "for it)" % name)
                    return None
            except (ImportError, OSError) as e:
                node.log("error", reason="%s transport not available here: %s" % (name, e))
                return None
            self.transports[name] = tr
        try:
            sock = tr.open(addr_text(coa))
        except OSError as e:
            node.log("error", reason="cannot open %s from %s: %s" % (name, addr_text(coa), e))
            return None
        if self.active is not None and self.active is not tr or self.old is not None:
            from .switchover import keep    # make before break: the old one is kept
            keep(self, tr)
        else:
            for t in self.tasks:
                t.cancel()
        self.active = tr
        self.tasks = [asyncio.create_task(read_each(sock, node.rx, node.packet_in))]
        link = getattr(tr, "link_sock", None)
        if link is not None:          # ip6: BAs (type 2 routing header) come on the link
            from .ip6 import link_in
            buf = tr.link_buf
            self.tasks.append(asyncio.create_task(read_each(link, buf, lambda n: link_in(node, buf, n))))
        return tr
