"""The meta-analysis and budget parts of the Python API as a notebook meets them: importing them
leaves matplotlib's backend alone, and the public names are where the documentation says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_importing_the_api_and_its_figure_modules_keeps_the_backend():
    code = ("import matplotlib; matplotlib.use('svg'); import tpflux, tpflux.meta, tpflux.carbon_budget; "
            "import reports.forest_rr, reports.budget_figures; "
            "from tpflux.meta import ResponseRatioFit; from tpflux.carbon_budget import BudgetResult; "
            "print(matplotlib.get_backend())")
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "svg"


def test_load_knows_both_result_classes():
    from tpflux.carbon_budget import BudgetResult
    from tpflux.io import result_classes
    from tpflux.meta import ResponseRatioFit

    classes = result_classes()
    assert classes["fit_rr"] is ResponseRatioFit and classes["budget"] is BudgetResult
    assert (ResponseRatioFit.TREE_FILE, ResponseRatioFit.SUMMARY_FILE) == ("rr_posterior.nc", "rr_summary.csv")
    assert (BudgetResult.TREE_FILE, BudgetResult.SUMMARY_FILE) == ("budget_posterior.nc", "budget_summary.csv")
