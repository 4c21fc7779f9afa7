"""What every decoded message and option of the codec is: a record of named fields.

Two records are equal when their fields are, whatever raw bytes, checksum or padding choice they
arrived with; repr shows the fields by name. Messages (wire.mh), options (wire.mhopts) and ICMPv6
messages (wire.nd, wire.icmp6) all build on it.
"""


class Record:
    _transient = ("raw", "checksum", "auto_pad")  # how it came off the wire, not what it says

    def _fields(self):
        d = dict(self.__dict__)
        for k in self._transient:
            d.pop(k, None)
        return d

    def __eq__(self, other):
        return type(self) is type(other) and self._fields() == other._fields()

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join(
            "%s=%r" % kv for kv in sorted(self._fields().items())))
