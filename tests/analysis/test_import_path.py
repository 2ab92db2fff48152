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
