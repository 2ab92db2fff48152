"""The one exception type users see: a bad input, stated in one line with the fix."""


class UserError(ValueError):
    """Bad input from the user. The CLI prints ``str(err)`` on one line and exits with code 2.

    Subclasses :class:`ValueError` so library callers can catch it the usual way. ``all_ranks`` is True
    when every ``torch.distributed`` rank raised this same error (see
    :func:`greedyprune.distributed.same_error_on_every_rank`); the CLI then prints it on rank 0 only.
    """

    all_ranks: bool = False
