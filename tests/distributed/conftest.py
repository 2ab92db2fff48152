import pytest

from .jobs import run_two_ranks


@pytest.fixture(scope="session")
def two_ranks(tmp_path_factory):
    """The folder of results of every job in :mod:`tests.distributed.jobs`, run once on 2 gloo ranks."""
    return run_two_ranks(tmp_path_factory.mktemp("two-ranks"))
