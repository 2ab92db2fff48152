"""The one exception type users see: a bad input, stated in one line with the fix."""


class UserError(ValueError):
    """Bad input from the user. The CLI prints ``str(err)`` on one line and exits with code 2.

    Subclasses :class:`ValueError` so library callers can catch it the usual way.
    """
