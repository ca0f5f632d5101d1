"""examples/quickstart.py runs as a plain script, every step, and opens as a notebook."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.helpers import EXAMPLES, run_script, subprocess_env

QUICKSTART = EXAMPLES / "quickstart.py"
# Tiny sampling on the simulator: every step runs (the convergence gate fails, which the
# quickstart reports and goes on).
SMALL = {"TPFLUX_QUICKSTART_DATASET": "synthetic", "TPFLUX_QUICKSTART_CHAINS": "2",
         "TPFLUX_QUICKSTART_DRAWS": "100", "TPFLUX_QUICKSTART_TUNE": "100",
         "TPFLUX_QUICKSTART_SEED": "3"}
NOTEBOOK_TOOLS = ("jupytext", "nbformat", "IPython", "ipykernel")
# What the quickstart walks through, in order, as code of its cells.
STEPS = ("tpflux.load_observations(", "tpflux.fit_ea(", "fit.diagnostics", "fit.plot_temperature_response(",
         "fit.save(", "tpflux.load(", "fit.result_text()", "summary = fit.summary()")


def test_quickstart_runs_as_a_plain_script_without_notebook_tools(tmp_path):
    from data.storage import RunFolder

    import tpflux

    # A previous quickstart run in the default output folder, which this run must replace whole.
    out = tmp_path / "quickstart-run"
    with RunFolder(out / "run", job="fit_ea", run_id="previous") as previous:
        (previous.path / "stale.txt").write_text("from the previous run")
    (out / "figures").mkdir()
    (out / "figures" / "stale.png").write_bytes(b"from the previous run")
    # Notebook tooling made unimportable: the script must not need it.
    blocker = tmp_path / "blocked"
    for name in NOTEBOOK_TOOLS:
        (blocker / name).mkdir(parents=True)
        (blocker / name / "__init__.py").write_text(f"raise ImportError('{name} is blocked in this test')\n")
    env = {k: v for k, v in subprocess_env(**SMALL, PYTHONPATH=str(blocker)).items()
           if k != "TPFLUX_QUICKSTART_OUT"}

    done = run_script(QUICKSTART, cwd=tmp_path, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]

    run = out / "run"
    saved = {p.name for p in run.iterdir()}
    assert {"ea_summary.csv", "ea_posterior.nc", "diagnostics.json", "run.json"} <= saved
    assert not (run / "stale.txt").exists() and not (out / "figures" / "stale.png").exists()
    assert json.loads((run / "run.json").read_text())["run_id"] != "previous"
    summary = pd.read_csv(run / "ea_summary.csv")
    assert {"E", "dE", "P_dE_gt_0"} <= set(summary["quantity"])
    assert summary[summary["quantity"] == "E"][["median", "ci_low", "ci_high"]].notna().all().all()
    loaded = tpflux.load(run)
    assert (loaded.config.dataset, loaded.config.chains, loaded.config.draws, loaded.config.tune,
            loaded.config.seed) == ("synthetic", 2, 100, 100, 3)
    assert loaded.diagnostics["verdict"] in ("pass", "fail")
    for name in ("temperature_response.png", "arrhenius.png", "season_difference.png", "rank.png"):
        figure = out / "figures" / name
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    # Each step reported what it did.
    for text in ("6500 rows at 27 sites [SYNTHETIC DATA]", "verdict:", "summary equal",
                 "Activation energy E (eV)", "wetland_emission"):
        assert text in done.stdout, text


def test_quickstart_opens_as_a_notebook():
    jupytext = pytest.importorskip("jupytext")

    source = QUICKSTART.read_text(encoding="utf-8")
    notebook = jupytext.reads(source, fmt="py:percent")
    assert notebook.metadata["jupytext"]["text_representation"]["format_name"] == "percent"
    assert notebook.metadata["kernelspec"]["language"] == "python"
    kinds = [cell.cell_type for cell in notebook.cells]
    assert kinds[0] == "markdown" and notebook.cells[0].source.startswith("# ")
    assert kinds.count("markdown") >= 6 and kinds.count("code") >= 6
    # Every step is in a code cell, in order, each after prose.
    code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    positions = [next(i for i, cell in enumerate(code) if step in cell) for step in STEPS]
    assert positions == sorted(positions), dict(zip(STEPS, positions))
    # Below its header (where jupytext adds its own version) the file is what jupytext writes
    # back: no cell is lost, split or merged.
    body = lambda text: text.split("# ---\n", 2)[2]  # noqa: E731
    assert body(jupytext.writes(notebook, fmt="py:percent")) == body(source)
