"""Two launches of 2 gloo ranks per session, started together (they share the machine's idle time).

``killed_training``: ``greedyprune train`` under torchrun with slowed steps, for the test to SIGKILL.
``two_ranks``: the folder of results of every job in :mod:`tests.distributed.jobs`.
"""

import pytest

from .jobs import kill, run_two_ranks, start_slow_training


@pytest.fixture(scope="session")
def _launches(tmp_path_factory):
    victim, run = start_slow_training(tmp_path_factory.mktemp("killed"))
    try:
        yield run_two_ranks(tmp_path_factory.mktemp("two-ranks")), (victim, run)
    finally:
        if victim.poll() is None:  # the kill test did not run
            kill(victim)


@pytest.fixture(scope="session")
def two_ranks(_launches):
    return _launches[0]


@pytest.fixture(scope="session")
def killed_training(_launches):
    return _launches[1]
