"""``python -m greedyprune``: the ``greedyprune`` console script as a module.

This is what ``torchrun --standalone --nproc_per_node=N -m greedyprune prune ...`` runs on every rank
(torchrun starts ``python -u -m greedyprune ...``); ``torchrun ... --no-python greedyprune prune ...``
runs the console script instead. Both are the same :func:`greedyprune.cli.main.main`.
"""

import sys

from .cli.main import main

if __name__ == "__main__":
    sys.exit(main())
