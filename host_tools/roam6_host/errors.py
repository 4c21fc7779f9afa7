"""User-facing failures: raise UserError with what is wrong and what to do; the CLI prints it, no traceback."""


class UserError(Exception):
    """A mistake or a missing piece on the user's side. `exit_code` is what the CLI returns."""

    def __init__(self, message, hint=None, exit_code=2):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code

    def __str__(self):
        if self.hint:
            return "%s\n  -> %s" % (self.message, self.hint)
        return self.message
