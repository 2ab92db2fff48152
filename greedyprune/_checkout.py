"""``greedyprune.analysis`` from a source checkout, and ``import analysis`` there as an alias of it.

The wheel installs the repository folder ``analysis/`` as the subpackage ``greedyprune.analysis`` (a
package-dir mapping in ``setup.py``). A checkout (the repository root on ``sys.path``, e.g.
``PYTHONPATH=$PWD``) has no ``greedyprune/analysis/``: :func:`map_sibling_analysis` adds a finder that maps
the name to the sibling folder -- first in ``sys.meta_path``, so an editable install of *another*
checkout does not win. :func:`alias_top_level` makes ``import analysis`` (the old name, which only a
checkout provides) return the very same module objects, so classes compare equal whichever name was used.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from pathlib import Path

PACKAGE = "greedyprune.analysis"


class _SiblingFolder(importlib.abc.MetaPathFinder):
    """Finds :data:`PACKAGE` in ``folder`` (its submodules are then found through its ``__path__``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def find_spec(self, fullname, path=None, target=None):
        if fullname != PACKAGE:
            return None
        return importlib.util.spec_from_file_location(fullname, self.folder / "__init__.py",
                                                      submodule_search_locations=[str(self.folder)])


def map_sibling_analysis(package_file: str) -> None:
    """Called by ``greedyprune/__init__.py``: in a checkout, map ``greedyprune.analysis`` to ``../analysis``."""
    here = Path(package_file).resolve().parent
    folder = here.parent / "analysis"
    if (here / "analysis").is_dir() or not (folder / "__init__.py").is_file():
        return  # installed from a wheel (the subpackage is really there), or not a checkout
    if not any(isinstance(f, _SiblingFolder) for f in sys.meta_path):
        sys.meta_path.insert(0, _SiblingFolder(folder))


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``analysis.X`` -> the module ``greedyprune.analysis.X`` itself (not a second copy)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.startswith("analysis."):
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        module = importlib.import_module("greedyprune." + spec.name)
        self._original = module.__spec__
        return module

    def exec_module(self, module) -> None:
        module.__spec__ = self._original  # the import system stamped the alias spec on it


def alias_top_level() -> None:
    """Called by ``analysis/__init__.py`` when imported as ``analysis``: that name becomes ``greedyprune.analysis``."""
    sys.modules["analysis"] = importlib.import_module(PACKAGE)
    if not any(isinstance(f, _Alias) for f in sys.meta_path):
        sys.meta_path.insert(0, _Alias())
