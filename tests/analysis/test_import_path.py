"""The analysis package is ``greedyprune.analysis``; from a checkout ``import analysis`` is the same modules."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_greedyprune_analysis_is_the_checkout_folder_and_the_old_name_aliases_it():
    code = ("import greedyprune.analysis as ga, analysis, analysis.geometry\n"
            "from analysis.group import GroupStatistics as A\n"
            "from greedyprune.analysis.group import GroupStatistics as B\n"
            "assert analysis is ga and analysis.geometry is ga.geometry and A is B\n"
            "assert ga.geometry.__spec__.name == 'greedyprune.analysis.geometry'\n"
            "print(ga.__file__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert Path(out.stdout.strip()) == ROOT / "analysis" / "__init__.py"  # this checkout's, not another install's


def test_the_wheel_installs_analysis_under_greedyprune_only(tmp_path):
    """Issue 19, item 6: the wheel of this checkout has ``greedyprune/analysis/...`` (THEORY.md included) and
    no top-level ``analysis`` (before: ``analysis/__init__.py`` at the top of site-packages). Built offline
    from a copy of the sources with the installed setuptools (no build isolation, no index)."""
    import shutil
    import zipfile

    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, src / name)
    for name in ("greedyprune", "analysis"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                          "-q", "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("greedyprune-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert "analysis" not in tops and all(t == "greedyprune" or t.endswith(".dist-info") for t in tops), tops
    for module in ("__init__.py", "geometry.py", "check.py", "resolution.py", "THEORY.md"):
        assert f"greedyprune/analysis/{module}" in names
