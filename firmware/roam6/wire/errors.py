"""The one exception every decoder raises for malformed input."""


class DecodeError(ValueError):
    """Malformed bytes: `offset` counts from the start of the buffer given to the decoder."""

    def __init__(self, offset, reason):
        super().__init__("offset %d: %s" % (offset, reason))
        self.offset = offset
        self.reason = reason

    def __str__(self):
        return "offset %d: %s" % (self.offset, self.reason)
