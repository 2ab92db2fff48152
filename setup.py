"""Package layout (everything else is in pyproject.toml).

The repository folder ``analysis/`` (the theory checks: decay curves, fits, bounds) is installed as the
subpackage ``greedyprune.analysis`` through a package-dir mapping, so the wheel adds no generic top-level
``analysis`` module to site-packages. From a checkout, ``greedyprune/_checkout.py`` maps the same name.
"""

from setuptools import find_packages, setup

setup(packages=find_packages(include=["greedyprune", "greedyprune.*"]) + ["greedyprune.analysis"],
      package_dir={"greedyprune.analysis": "analysis"},
      package_data={"greedyprune.analysis": ["THEORY.md"]})
