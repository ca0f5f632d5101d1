"""Reports: every number in the tables is the DataTree's, one interval constant drives tables and
figures, every figure file exists, the HTML is self-contained and loads in a real browser.

One small fit_ea run (NUTS replaced by prior draws: sampling quality is not the point here) is
made and reported once per module; the tests read what ``python -m reports.build`` wrote.
"""

from __future__ import annotations

import ast
import functools
import io
import json
import os
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from inference import fit_ea, runio
from models import conventions
from reports import browser_check, build, diagnostic_figures, ea_figures, methods, tables
from reports.load import detect_kind

REPORTS = Path(__file__).resolve().parent.parent / "reports"
OWN_MODULES = ("build.py", "html.py", "tables.py", "methods.py", "ea_figures.py", "diagnostic_figures.py",
               "load.py", "browser_check.py", "layout.py", "comparison_figures.py", "crossvalidation_figures.py",
               "forest_rr.py", "budget_figures.py")
EA_FIGURES = ("temperature_response", "arrhenius", "activation_energy_forest", "season_difference", "rank",
              "trace", "energy", "posterior_predictive", "prior_predictive")
EA_TABLES = ("activation_energy", "season_difference", "temperature_sensitivity", "hyperparameters",
             "site_activation_energy", "data_summary", "convergence", "prior_sensitivity", "barg_checklist")
POSTERIOR_TABLES = ("activation_energy", "season_difference", "temperature_sensitivity", "hyperparameters",
                    "site_activation_energy")


# Simulated wetland sites measured by three methods (so method offsets are fitted), thinned: a
# report's cost grows with panels (classes × seasons), not with observations.
SUBSET = {"SYN-EC01": 4, "SYN-EC04": 4, "SYN-AC01": 3, "SYN-SC01": 1, "SYN-SC04": 1, "SYN-SC07": 1}


@pytest.fixture(scope="module")
def ea_report(tmp_path_factory):
    """A reported fit_ea run on a chamber CSV: (run folder, build exit code, seconds to build)."""
    import time

    import pymc as pm
    from pymc.testing import mock_sample

    from data.synthetic import simulate_observations

    base = tmp_path_factory.mktemp("reports")
    table = simulate_observations(0)[0].table
    sub = pd.concat([table[table["site"] == site].iloc[::step] for site, step in SUBSET.items()])
    sub = sub.assign(flux_unit="nmol m-2 s-1", date=sub["date"].dt.strftime("%Y-%m-%d"))
    sub.to_csv(base / "chambers.csv", index=False)
    out = base / "run"
    rng = np.random.default_rng(5)
    stats = {"diverging": lambda size: np.zeros(size, dtype=bool),
             "tree_depth": lambda size: np.full(size, 3),
             "energy": lambda size: rng.normal(size=size)}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pm, "sample", functools.partial(mock_sample, sample_stats=stats))
        code = fit_ea.main(["--data", str(base / "chambers.csv"), "--out", str(out), "--seed", "3",
                            "--chains", "2", "--draws", "40", "--ppc-draws", "10", "--min-obs", "10",
                            "--allow-unconverged"])
    assert code == runio.EXIT_OK
    t0 = time.perf_counter()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(build, "FIGURE_DPI", 60)  # the contract, not the resolution, is under test
        code = build.main([str(out)])
    return out, code, time.perf_counter() - t0


@pytest.fixture(scope="module")
def tree(ea_report):
    with xr.open_datatree(ea_report[0] / "ea_posterior.nc", engine="h5netcdf") as dt:
        return dt.load()


def _draws(post: xr.Dataset, name: str, **where) -> np.ndarray:
    return post[name].sel(where).transpose("chain", "draw").to_numpy().ravel()


def _row_selection(row: pd.Series, name: str, post: xr.Dataset) -> dict:
    """The coordinates of a table row in the DataTree."""
    if name == "E_site":
        return {"group": f"{row['site']}|{row['flux_class']}|{row['season']}"}
    where = {}
    for dim in post[name].dims:
        if dim in ("chain", "draw"):
            continue
        value = row[dim]
        if dim == "temp_range":
            value = str(value).replace(" °C", " C")
        where[dim] = value
    return where


# ---------------------------------------------------------------- files
def test_build_writes_every_figure_and_table(ea_report):
    out, code, _ = ea_report
    assert code == runio.EXIT_OK
    for name in EA_FIGURES:
        png, pdf = out / "figures" / f"{name}.png", out / "figures" / f"{name}.pdf"
        assert png.stat().st_size > 1000 and png.read_bytes().startswith(b"\x89PNG"), name
        assert pdf.stat().st_size > 1000 and pdf.read_bytes().startswith(b"%PDF"), name
    for name in EA_TABLES:
        for ext in ("csv", "md", "tex"):
            assert (out / "tables" / f"{name}.{ext}").stat().st_size > 0, (name, ext)
    assert (out / "report.html").stat().st_size > 10_000
    assert "ΔE" in (out / "methods.md").read_text(encoding="utf-8")
    assert (out / "methods.tex").read_text(encoding="utf-8").isascii()
    assert not list(out.rglob("*.part")), "no temporary files left behind"


def test_html_is_self_contained_and_embeds_the_saved_figures(ea_report):
    out = ea_report[0]
    text = (out / "report.html").read_text(encoding="utf-8")
    assert not re.search(r'(src|href)="(https?:)?//', text), "no external resources"
    images = browser_check.embedded_images(text)
    assert len(images) == len(list((out / "figures").glob("*.png"))) == len(EA_FIGURES)
    assert all(i["embedded"] and i["decodes"] for i in images)
    embedded = re.findall(r'data-figure="([^"]+)" src="data:image/png;base64,([^"]+)"', text)
    import base64

    for name, data in embedded:
        assert base64.b64decode(data) == (out / "figures" / f"{name}.png").read_bytes(), name
    for section in ("Key results", "Methods", "BARG checklist", "Diagnostics", "Provenance"):
        assert f">{section}</h2>" in text
    assert "chambers.csv" in text  # the data source is named


# ---------------------------------------------------------------- contract: numbers
def test_every_table_number_equals_the_datatree(ea_report, tree):
    import arviz as az

    out = ea_report[0]
    post = tree["posterior"].to_dataset()
    lo, mid, hi = conventions.CI_QUANTILES
    checked = 0
    for name in POSTERIOR_TABLES:
        frame = pd.read_csv(out / "tables" / f"{name}.csv")
        for _, row in frame.iterrows():
            where = _row_selection(row, row["quantity"], post)
            draws = _draws(post, row["quantity"], **where)
            np.testing.assert_allclose([row["median"], row["ci_low"], row["ci_high"]],
                                       np.quantile(draws, [mid, lo, hi]), rtol=1e-10, err_msg=str(where))
            assert row["mean"] == pytest.approx(draws.mean(), rel=1e-10)
            chains = post[row["quantity"]].sel(where).transpose("chain", "draw").to_numpy()
            assert row["ess_bulk"] == pytest.approx(float(az.ess(chains, method="bulk")), rel=1e-8)
            one = xr.Dataset({"v": (("chain", "draw"), chains)})
            assert row["ess_tail"] == pytest.approx(float(az.ess(one, method="tail")["v"]), rel=1e-8)
            assert row["r_hat"] == pytest.approx(float(az.rhat(chains)), rel=1e-8)
            if name == "season_difference":
                assert row["p_gt_0"] == pytest.approx(np.mean(draws > 0))
            checked += 1
    n_e = post["E"].sizes["flux_class"] * post["E"].sizes["season"]
    assert checked >= 2 * n_e + post.sizes["group"]


def _number(cell: str) -> float:
    return float(cell.replace(tables.MINUS, "-").replace("$-$", "-"))


def _displayed(path: Path) -> tuple[list[str], list[list[str]]]:
    """(header, body rows) of a Markdown or LaTeX table file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if path.suffix == ".md":
        rows = [[c.strip() for c in ln.strip().strip("|").split(" | ")] for ln in lines if ln.startswith("| ")]
        return rows[0], rows[1:]
    start, end = lines.index(r"\midrule"), lines.index(r"\bottomrule")
    split = [[c.strip() for c in ln.removesuffix(r"\\").split(" & ")] for ln in lines[start - 1:end]]
    return [c.replace(r"\%", "%") for c in split[0]], split[2:]


@pytest.mark.parametrize("fmt", ["md", "tex"])
def test_displayed_numbers_are_the_csv_numbers_rounded(ea_report, fmt):
    out = ea_report[0]
    low, high = tables.ci_headers()
    for name in POSTERIOR_TABLES:
        frame = pd.read_csv(out / "tables" / f"{name}.csv")
        header, body = _displayed(out / "tables" / f"{name}.{fmt}")
        assert len(body) == len(frame)
        for col, label in (("median", "median"), ("ci_low", low), ("ci_high", high), ("r_hat", "R-hat"),
                           ("ess_bulk", "ESS bulk")):
            k = header.index(label)
            for cell, value in zip((r[k] for r in body), frame[col]):
                decimals = len(cell.split(".")[1]) if "." in cell else 0
                assert abs(_number(cell) - value) <= 0.5 * 10 ** -decimals + 1e-12, (name, col, cell, value)


def test_tables_agree_with_the_fit_jobs_summary(ea_report):
    out = ea_report[0]
    mine = pd.read_csv(out / "tables" / "activation_energy.csv")
    theirs = pd.read_csv(out / "ea_summary.csv")
    keys = ["quantity", "flux_class", "season"]
    joined = mine.merge(theirs, on=keys, suffixes=("", "_fit"))
    assert len(joined) == len(mine)
    for col in ("median", "ci_low", "ci_high", "ess_bulk", "r_hat"):
        np.testing.assert_allclose(joined[col], joined[f"{col}_fit"], rtol=1e-9)


def test_convergence_table_is_computed_from_the_draws(ea_report, tree):
    import arviz as az

    frame = pd.read_csv(ea_report[0] / "tables" / "convergence.csv")
    post = tree["posterior"].to_dataset()[["E", "lnR", "tau_E", "tau_R", "sigma", "E_site"]]
    value = dict(zip(frame["check"], frame["value"]))
    assert value["max R-hat (sampled and site parameters)"] == pytest.approx(float(az.rhat(post).to_array().max()))
    assert value["divergent transitions"] == int(tree["sample_stats"]["diverging"].sum())
    diag = json.loads((ea_report[0] / "diagnostics.json").read_text())
    assert value["max R-hat (sampled and site parameters)"] == pytest.approx(diag["r_hat_max"])
    # Every posterior quantity: the gated variables and the rest, each diagnosed once.
    every = tree["posterior"].to_dataset()
    with np.errstate(invalid="ignore"), __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore", RuntimeWarning)
        rhat, ess = az.rhat(every).to_array().max(), az.ess(every, method="bulk").to_array().min()
    assert value["max R-hat (every posterior quantity)"] == pytest.approx(float(rhat))
    assert value["min bulk ESS (every posterior quantity)"] == pytest.approx(float(ess))


# ---------------------------------------------------------------- contract: one interval constant
def test_interval_constant_drives_every_table_and_figure(tree, monkeypatch):
    monkeypatch.setattr(conventions, "CI_PROB", 0.8)
    monkeypatch.setattr(conventions, "CI_QUANTILES", (0.1, 0.5, 0.9))
    monkeypatch.setattr(conventions, "CI_LABEL", "80 % equal-tailed interval")
    post = tree["posterior"].to_dataset()
    made = {t.name: t for t in tables.ea_tables(tree)}
    for name in POSTERIOR_TABLES:
        table = made[name]
        row = table.data.iloc[0]
        draws = _draws(post, row["quantity"], **_row_selection(row, row["quantity"], post))
        np.testing.assert_allclose([row["ci_low"], row["ci_high"]], np.quantile(draws, [0.1, 0.9]), rtol=1e-10)
        text = tables.to_markdown(table) + tables.to_latex(table)
        assert "80 %" in text or r"80 \%" in text
        assert not re.search(r"95 \\?%|2\.5 \\?%", text), name  # no stale label
    cls, season = str(post["flux_class"][0].item()), str(post["season"][0].item())
    obs = ea_figures.observations(tree)
    temps = np.array([0.0, 10.0])
    lo, mid, hi = ea_figures.population_curve(post, obs, cls, season, temps, 15.0, log=True)
    method = ea_figures._mode(obs.loc[(obs.flux_class == cls) & (obs.season == season), "method"])
    ln_f = (_draws(post, "lnR", flux_class=cls, season=season)[:, None]
            + ea_figures._offset(post, method)[:, None]
            + _draws(post, "E", flux_class=cls, season=season)[:, None]
            * ea_figures.arrhenius_x(temps, 15.0)[None, :])
    np.testing.assert_allclose(lo, np.quantile(ln_f, 0.1, axis=0))
    fig = ea_figures.season_difference(tree)
    labels = [t.get_text() for ax in fig.axes for t in ax.get_legend().get_texts()]
    assert any("80 %" in t for t in labels) and not any("95" in t for t in labels)
    text = methods.ea_methods(load_run_from_tree(tree), tables.convergence_summary(tree)).text
    assert "80 % equal-tailed interval" in text and "10 % and 90 %" in text


def load_run_from_tree(tree):
    from reports.load import Run

    return Run(path=Path("."), kind="fit_ea", tree=tree, summary=None, diagnostics=None, attrs=dict(tree.attrs),
               config=json.loads(tree.attrs["tpflux_config"]), versions=json.loads(tree.attrs["package_versions"]))


INTERVAL_NUMBERS = {0.025, 0.975, 0.89, 0.055, 0.945, 2.5, 97.5}
INTERVAL_TEXT = re.compile(r"\b(95|89|97\.5|2\.5) ?%")


@pytest.mark.parametrize("module", sorted(p.name for p in REPORTS.glob("*.py")))
def test_no_hard_coded_interval_in_reports_source(module):
    """Interval quantiles come from models.conventions; this package's own modules also never spell
    an interval in a label."""
    source = (REPORTS / module).read_bytes()
    for tok in tokenize.tokenize(io.BytesIO(source).readline):
        if tok.type == tokenize.NUMBER:
            assert ast.literal_eval(tok.string) not in INTERVAL_NUMBERS, f"{module}:{tok.start[0]}: {tok.string}"
        if module in OWN_MODULES and tok.type == tokenize.STRING:
            assert not INTERVAL_TEXT.search(tok.string), f"{module}:{tok.start[0]}: {tok.string[:60]}"


# ---------------------------------------------------------------- reports stand on saved outputs alone
def _project_imports(path: Path) -> set[str]:
    """Every project module a source file imports, function-level imports included."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    roots = ("data", "models", "reports", "inference", "tpflux", "pymc")
    return {n for n in names if n.split(".")[0] in roots}


def _run_python(code: str, **env) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"} | env
    return subprocess.run([sys.executable, "-c", code], cwd=REPORTS.parent, env=environ,
                          capture_output=True, text=True, timeout=300)


def test_reports_import_neither_pymc_nor_the_inference_layer():
    modules = sorted({f"reports.{Path(m).stem}" for m in OWN_MODULES}
                     | {n for m in OWN_MODULES for n in _project_imports(REPORTS / m)})
    code = ("import importlib, sys\n"
            f"for name in {modules!r}:\n    importlib.import_module(name)\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('pymc', 'pytensor', 'inference'))\n"
            "assert not bad, bad\n")
    result = _run_python(code)
    assert result.returncode == 0, result.stderr


def test_importing_the_figure_modules_keeps_the_users_backend():
    code = ("import matplotlib\nmatplotlib.use('svg')\n"
            "import reports.build, reports.diagnostic_figures, reports.ea_figures\n"
            "assert matplotlib.get_backend() == 'svg', matplotlib.get_backend()\n")
    result = _run_python(code)
    assert result.returncode == 0, result.stderr


def _report_figures(tree) -> dict:
    """Every figure of a fit_ea report, drawn from the module's tree as build.py draws it."""
    post = tree["posterior"].to_dataset()
    names = diagnostic_figures.default_var_names(tree, conventions.EA_SAMPLED_VARIABLES)
    return {
        "temperature_response": ea_figures.temperature_response(tree),
        "arrhenius": ea_figures.arrhenius_plot(tree),
        "activation_energy_forest": ea_figures.activation_energy_forest(
            tables.summarise(post, ["E_site"]), tables.summarise(post, ["E"])),
        "season_difference": ea_figures.season_difference(tree),
        "rank": diagnostic_figures.rank_plot(tree, names, build.PLOT_MAX_DRAWS),
        "trace": diagnostic_figures.trace_plot(tree, names, build.PLOT_MAX_DRAWS),
        "energy": diagnostic_figures.energy_plot(tree),
        "posterior_predictive": diagnostic_figures.predictive_plot(tree, "posterior_predictive",
                                                                   xlabel=ea_figures.LN_FLUX_LABEL),
        "prior_predictive": diagnostic_figures.predictive_plot(tree, "prior_predictive",
                                                               xlabel=ea_figures.LN_FLUX_LABEL, band=True),
    }


@pytest.fixture(scope="module")
def figures(tree):
    return _report_figures(tree)


def test_figures_are_returned_undrawn_and_outside_pyplot(figures):
    assert set(figures) == set(EA_FIGURES)
    for name, fig in figures.items():
        assert fig.canvas.manager is None, name  # not registered with pyplot: nothing shown or kept open


def _shown_tick_labels(axis) -> list:
    """The tick labels an axis draws: those of ticks inside its view (it keeps spare ticks)."""
    lo, hi = sorted(axis.get_view_interval())
    tol = 1e-9 * max(abs(lo), abs(hi), 1.0)
    return [t.label1 for t in axis.get_major_ticks() if lo - tol <= t.get_loc() <= hi + tol] + \
        [t.label2 for t in axis.get_major_ticks() if lo - tol <= t.get_loc() <= hi + tol]


def _texts(fig) -> list:
    """The titles, axis labels and tick labels of a figure (those a layout must make room for)."""
    out = [fig._suptitle] if fig._suptitle is not None else []
    for ax in fig.axes:
        for a in [ax, *ax.child_axes]:
            out += [a.title, a._left_title, a.xaxis.label, a.yaxis.label,
                    *_shown_tick_labels(a.xaxis), *_shown_tick_labels(a.yaxis)]
    return [t for t in out if t.get_visible() and t.get_text().strip()]


def test_figures_keep_every_label_inside_and_clear_of_the_others(figures):
    """The fixed layouts leave room for every title, axis label and tick label: none is cut by
    the figure's edge and none runs into another."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    for name, fig in figures.items():
        FigureCanvasAgg(fig)
        fig.draw_without_rendering()
        renderer = fig.canvas.get_renderer()
        texts = _texts(fig)
        boxes = np.array([t.get_window_extent(renderer).extents for t in texts])  # x0, y0, x1, y1
        width, height = fig.bbox.width, fig.bbox.height
        outside = (boxes[:, 0] < -1) | (boxes[:, 1] < -1) | (boxes[:, 2] > width + 1) | (boxes[:, 3] > height + 1)
        assert not outside.any(), (name, [texts[i].get_text() for i in np.flatnonzero(outside)])
        lo, hi = boxes[:, None, :2] + 1, boxes[:, None, 2:] - 1  # a pixel of grace: touching is not overlap
        overlap = ((np.minimum(hi, boxes[None, :, 2:]) - np.maximum(lo, boxes[None, :, :2])) > 0).all(-1)
        np.fill_diagonal(overlap, False)
        i, j = np.nonzero(np.triu(overlap))
        assert not len(i), (name, [(texts[a].get_text(), texts[b].get_text()) for a, b in zip(i[:5], j[:5])])


@pytest.mark.parametrize("name, units", [("temperature_response", ("°C", "nmol m⁻² s⁻¹")),
                                         ("arrhenius", ("eV⁻¹", "°C", "nmol m⁻² s⁻¹")),
                                         ("season_difference", ("eV",)), ("trace", ("eV", "nmol m⁻² s⁻¹")),
                                         ("activation_energy_forest", ("eV",)),
                                         ("posterior_predictive", ("nmol m⁻² s⁻¹",))])
def test_figures_label_their_axes_with_units(figures, name, units):
    labels = " ".join(a.get_xlabel() + " " + a.get_ylabel() for ax in figures[name].axes
                      for a in (ax, *ax.child_axes))
    assert all(u in labels for u in units), (name, labels)
    for key, fig in figures.items():
        assert any(ax.get_xlabel() for ax in fig.axes), key
        assert any(ax.get_ylabel() for ax in fig.axes), key


def test_predictive_check_shows_one_line_per_draw_and_ecdfs_for_small_cells(tree, figures):
    from matplotlib.collections import LineCollection

    n_draws = tree["posterior_predictive"].sizes["chain"] * tree["posterior_predictive"].sizes["draw"]
    cells = 0
    for ax in figures["posterior_predictive"].axes:
        n_obs = int(re.search(r"n = (\d+)", ax.get_title()).group(1))
        lines = [c for c in ax.collections if isinstance(c, LineCollection)]
        assert len(lines) == 1 and len(lines[0].get_segments()) == min(diagnostic_figures.PREDICTIVE_DRAWS, n_draws)
        expected = (diagnostic_figures.CDF_LABEL if n_obs < diagnostic_figures.ECDF_BELOW
                    else diagnostic_figures.DENSITY_LABEL)
        assert ax.get_ylabel() == expected
        cells += n_obs
    assert cells == tree["observed_data"].sizes["obs"]  # every observation in one cell


def _chains(shift: float) -> xr.DataTree:
    rng = np.random.default_rng(11)
    draws = rng.normal(size=(4, 400)) + np.array([[shift], [0], [0], [0]])
    return xr.DataTree.from_dict({"posterior": xr.Dataset({"mu": (("chain", "draw"), draws)})})


def test_rank_plot_flags_a_chain_that_explores_elsewhere():
    flagged = {}
    for shift in (0.0, 1.0):
        ax = diagnostic_figures.rank_plot(_chains(shift), ["mu"], max_draws=200).axes[0]
        flagged[shift] = sum(len(c.get_offsets()) for c in ax.collections if hasattr(c, "get_sizes"))
        p = float(re.search(r"p = ([0-9.]+)", " ".join(t.get_text() for t in ax.texts)).group(1))
        assert (p < 0.01) == (shift > 0), (shift, p)
    assert flagged[0.0] == 0 and flagged[1.0] > 0


def test_thinned_draws_keep_every_divergence():
    tree = _chains(0.0)
    diverging = np.zeros((4, 400), dtype=bool)
    diverging[2, 5] = True  # not a kept draw: draw 4 stands for draws 4-7
    tree["sample_stats"] = xr.DataTree(xr.Dataset({"diverging": (("chain", "draw"), diverging)}))
    thin = diagnostic_figures.thinned(tree, ["mu"], diagnostic_figures.thinning_step(tree, 100))
    post = thin["posterior"].to_dataset()
    assert list(post["draw"].values) == list(range(0, 400, 4))
    flags = thin["sample_stats"]["diverging"].to_numpy()
    assert flags.sum() == 1 and flags[2, 1]
    np.testing.assert_array_equal(post["mu"], tree["posterior"]["mu"].to_numpy()[:, ::4])


def test_log_likelihood_per_draw_sums_every_observation_of_every_draw(tree, monkeypatch):
    from models.arrhenius_loglik import pointwise_log_likelihood

    whole = pointwise_log_likelihood(tree).sum("obs", dtype=np.float64)
    # Gaussian fits: from per-group statistics (float64; the pointwise values are float32)
    fast = tables.log_likelihood_per_draw(tree)
    assert fast.dims == ("chain", "draw") and fast.sizes == whole.sizes
    np.testing.assert_allclose(fast.to_numpy(), whole.to_numpy(), rtol=1e-6)
    # otherwise summed over blocks of draws of the pointwise values
    monkeypatch.setattr(tables, "total_log_likelihood", lambda tree: None)
    monkeypatch.setattr(tables, "LOG_LIKELIHOOD_BLOCK_DRAWS", 7)  # blocks that do not divide the draws
    blocked = tables.log_likelihood_per_draw(tree)
    assert blocked.dims == ("chain", "draw") and blocked.sizes == whole.sizes
    np.testing.assert_allclose(blocked.to_numpy(), whole.to_numpy(), rtol=1e-12)


def test_thinned_report_keeps_every_figure_and_says_so_in_the_captions(ea_report, tmp_path, monkeypatch):
    import shutil

    folder = tmp_path / "run"
    shutil.copytree(ea_report[0], folder, ignore=shutil.ignore_patterns(*build.REPORT_ENTRIES))
    draws = xr.open_datatree(folder / "ea_posterior.nc", engine="h5netcdf")["posterior"].sizes["draw"]
    monkeypatch.setattr(build, "FIGURE_DPI", 60)
    monkeypatch.setattr(build, "PLOT_MAX_DRAWS", draws // 4)
    assert build.main([str(folder)]) == runio.EXIT_OK
    assert {p.stem for p in (folder / "figures").glob("*.png")} == set(EA_FIGURES)
    assert {p.stem for p in (folder / "figures").glob("*.pdf")} == set(EA_FIGURES)
    text = (folder / "report.html").read_text(encoding="utf-8")
    captions = dict(re.findall(r'<figure id="fig-([^"]+)">.*?<figcaption>(.*?)</figcaption>', text, re.S))
    assert set(captions) == set(EA_FIGURES)
    note = f"one draw in 4 ({draws // 4} of {draws} per chain"
    for name, caption in captions.items():
        assert len(caption) > 40, name
        assert (note in caption) == (name in ("rank", "trace")), name
    full = (ea_report[0] / "report.html").read_text(encoding="utf-8")
    assert "one draw in" not in full  # the module's report ranks every draw


# ---------------------------------------------------------------- methods and BARG
def test_methods_paragraph_describes_this_run_not_the_defaults(tree):
    run = load_run_from_tree(tree)
    conv = tables.convergence_summary(tree, ["E", "lnR", "tau_E", "tau_R", "sigma", "E_site"])
    text = methods.ea_methods(run, conv).text
    cfg = run.config
    assert f"{cfg['chains']} chains of {cfg['draws']} draws" in text
    assert f"Normal({cfg['priors']['E_mu']:g}, {cfg['priors']['E_sd']:g}) eV" in text
    assert f"PyMC {run.versions['pymc']}" in text and f"ArviZ {run.versions['arviz']}" in text
    assert f"{conv['r_hat_max']:.3f}" in text
    assert cfg["data"] in text and "cite the data's authors" in text
    # A run with other priors gets other text, and its prior justification is flagged.
    cfg2 = json.loads(json.dumps(cfg))
    cfg2["priors"]["E_sd"] = cfg["priors"]["E_sd"] / 2
    run2 = load_run_from_tree(tree)
    run2.config = cfg2
    text2 = methods.ea_methods(run2, conv).text
    assert f"Normal({cfg['priors']['E_mu']:g}, {cfg2['priors']['E_sd']:g}) eV" in text2
    assert "differ from the package defaults" in text2
    barg = methods.barg_checklist(run2, set(EA_FIGURES), set(EA_TABLES), conv)
    assert barg.set_index(["step", "item"]).loc[("1 Model", "C"), "status"] == methods.ATTENTION


def test_barg_convergence_items_follow_the_diagnostics(tree):
    run = load_run_from_tree(tree)
    conv = tables.convergence_summary(tree)
    gate = runio.GATE
    good = {**conv, "r_hat_max": gate["r_hat_max"] - 0.005, "ess_bulk_min": gate["ess_bulk_min"] + 1,
            "ess_tail_min": gate["ess_tail_min"] + 1, "divergences": 0}
    bad = {**good, "r_hat_max": gate["r_hat_max"] + 0.05}
    status = {name: methods.barg_checklist(run, set(), set(), c).set_index(["step", "item"])["status"]
              for name, c in (("good", good), ("bad", bad))}
    assert status["good"][("2 Computation", "B")] == methods.DONE
    assert status["bad"][("2 Computation", "B")] == methods.ATTENTION
    # Without the predictive figures, the predictive-check items are not done.
    assert status["good"][("1 Model", "E")] == methods.NOT_DONE
    assert status["good"][("3 Posterior", "A")] == methods.NOT_DONE
    # User-supplied data are not public: depositing them is flagged.
    assert status["good"][("6 Reproducibility", "B")] == methods.ATTENTION


def test_latex_tables_are_escaped(ea_report, daily_run):
    # what the tables and the methods hold beyond these runs (a public data set's shortened hash, ρ)
    assert tables.latex_escape("SHA-256 297ab317… ρ φ Σ").isascii()
    for path in [*(ea_report[0] / "tables").glob("*.tex"), *(daily_run / "tables").glob("*.tex")]:
        body = path.read_text(encoding="utf-8").split("\n", 1)[1]  # after the booktabs comment
        plain = re.sub(r"\$[^$]*\$|\\label\{[^}]*\}", "", body)  # text outside math and labels
        assert not re.search(r"(?<!\\)[_%&#]", plain.replace(" & ", " ")), path.name
        assert body.count("$") % 2 == 0, path.name
        assert body.isascii(), path.name


# ---------------------------------------------------------------- inputs
def test_detect_kind_from_file_names(tmp_path):
    for kind, marker in (("fit_ea", "ea_posterior.nc"), ("fit_rr", "rr_summary.csv"),
                         ("project", "projection_summary.csv"), ("budget", "budget_summary.csv")):
        folder = tmp_path / kind
        folder.mkdir()
        (folder / marker).write_text("")
        assert detect_kind(folder) == kind


@pytest.mark.parametrize("case", ["missing", "empty", "corrupt"])
def test_bad_run_folder_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, case):
    folder = tmp_path / "run"
    if case != "missing":
        folder.mkdir()
    if case == "corrupt":
        (folder / "ea_posterior.nc").write_bytes(b"not a netcdf file")
    code = build.main([str(folder)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == runio.EXIT_BAD_INPUT
    assert len(err) == 1 and err[0].startswith("error: ") and str(folder) in err[0]
    assert not (folder / "report.html").exists() and not (folder / "figures").exists()


def test_budget_run_reports_its_summary_and_notes_missing_figures(tmp_path):
    folder = tmp_path / "budget"
    folder.mkdir()
    rng = np.random.default_rng(1)
    q = np.sort(rng.uniform(50, 150, size=(3, 3)), axis=1)
    summary = pd.DataFrame({"quantity": ["GPP_direct", "GPP_implied", "p_agree_GPP"],
                            "median": q[:, 1], "ci_low": q[:, 0], "ci_high": q[:, 2]})
    summary.to_csv(folder / "budget_summary.csv", index=False)
    assert build.main([str(folder)]) == runio.EXIT_OK
    saved = pd.read_csv(folder / "tables" / "budget_summary.csv")
    np.testing.assert_allclose(saved[["median", "ci_low", "ci_high"]], summary[["median", "ci_low", "ci_high"]])
    text = (folder / "report.html").read_text(encoding="utf-8")
    assert "budget_draws.nc" in text and "BARG checklist" in text


def test_meta_analysis_run_tables_are_recomputed_from_its_draws(tmp_path, monkeypatch):
    monkeypatch.setattr(build, "FIGURE_DPI", 60)
    folder = tmp_path / "rr"
    rng = np.random.default_rng(2)
    seasons = ["growing", "non-growing"]
    ln_rr = rng.normal([0.2, 0.5], 0.1, size=(2, 200, 2))
    post = xr.Dataset({"lnRR": (("chain", "draw", "season"), ln_rr),
                       "RR": (("chain", "draw", "season"), np.exp(ln_rr)),
                       "tau": (("chain", "draw"), np.abs(rng.normal(0.3, 0.05, size=(2, 200))))},
                      coords={"chain": [0, 1], "draw": np.arange(200), "season": seasons})
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((2, 200), dtype=bool)),
                        "energy": (("chain", "draw"), rng.normal(size=(2, 200)))},
                       coords={"chain": [0, 1], "draw": np.arange(200)})
    dt = xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})
    dt.attrs.update(runio.provenance({"dataset": "synthetic-warming", "synthetic": True}, "0" * 64, 1, []))
    runio.write_datatree(folder / "rr_posterior.nc", dt)
    saved = tables.summarise(post, ["RR", "tau"]).assign(p_agree=np.nan)
    runio.write_csv(folder / "rr_summary.csv", pd.concat([saved, pd.DataFrame({"quantity": ["p_agree"],
                                                                               "median": [0.4]})]))
    assert build.main([str(folder)]) == runio.EXIT_OK
    frame = pd.read_csv(folder / "tables" / "rr_posterior.csv")
    for row in frame.itertuples():
        where = {"season": row.season} if row.quantity == "RR" else {}
        draws = post[row.quantity].sel(where).to_numpy().ravel()
        np.testing.assert_allclose([row.median, row.ci_low, row.ci_high],
                                   np.quantile(draws, [0.5, *conventions.CI_QUANTILES[::2]]), rtol=1e-10)
    assert set(frame["quantity"]) == {"RR", "tau"}
    rest = pd.read_csv(folder / "tables" / "rr_summary.csv")  # rows that are not posterior variables
    assert list(rest["quantity"]) == ["p_agree"]
    for name in ("rank", "trace", "energy"):
        assert (folder / "figures" / f"{name}.png").stat().st_size > 0


# ---------------------------------------------------------------- real browser
@pytest.mark.skipif(browser_check.find_browser() is None, reason="Chromium not installed (CI machines lack it)")
def test_report_renders_in_chromium_with_every_image_loaded(ea_report, tmp_path):
    result = browser_check.check(ea_report[0] / "report.html", tmp_path / "shot.png", height=2000)
    assert result["browser_total"] == len(EA_FIGURES)
    assert result["browser_loaded"] == result["browser_total"]
    assert result["screenshot_size"] == (1400, 2000)
    assert result["ok"]


# ---------------------------------------------------------------- ρ, extrapolation, held-out check
# Daily and weekly sites kept whole (consecutive days give lag-1 residual autocorrelations).
FULL = ("SYN-EC01", "SYN-AC01", "SYN-SC01", "SYN-SC04", "SYN-SC07", "SYN-AC02", "SYN-EC03")


@pytest.fixture(scope="module")
def daily_run(tmp_path_factory):
    """A fit_ea run on whole daily series (NUTS replaced by prior draws), reported: the run folder."""
    import tpflux
    from data.synthetic import simulate_observations
    from tests.helpers import mock_sampling

    base = tmp_path_factory.mktemp("daily")
    table = simulate_observations(0)[0].table
    sub = table[table["site"].isin(FULL)]
    sub.assign(flux_unit="nmol m-2 s-1", date=sub["date"].dt.strftime("%Y-%m-%d")).to_csv(
        base / "sites.csv", index=False)
    out = base / "run"
    with pytest.MonkeyPatch.context() as mp:
        mock_sampling(mp, energy=True)
        # one season: its soil temperatures span 0-10 °C (the simulator's growing seasons stay above 2 °C)
        fit = tpflux.fit_ea(base / "sites.csv", seasons="none", chains=2, draws=40, ppc_draws=5, min_obs=10,
                            seed=4, progress=False)
        fit.save(out)
        mp.setattr(build, "FIGURE_DPI", 60)
        assert build.main([str(out)]) == runio.EXIT_OK
    return out


@pytest.fixture(scope="module")
def cv_report(daily_run, tmp_path_factory):
    """``daily_run`` with its held-out check in RUN_DIR/crossvalidation, reported again."""
    import shutil

    import tpflux
    from tests.helpers import mock_sampling

    out = tmp_path_factory.mktemp("cv") / "run"
    shutil.copytree(daily_run, out, ignore=shutil.ignore_patterns(*build.REPORT_ENTRIES))
    with pytest.MonkeyPatch.context() as mp:
        mock_sampling(mp, energy=True)
        tpflux.crossvalidate_ea(out, progress=False).save(out / "crossvalidation")
        mp.setattr(build, "FIGURE_DPI", 60)
        assert build.main([str(out)]) == runio.EXIT_OK
    return out


def _constant(folder: Path) -> pd.DataFrame:
    with xr.open_datatree(folder / "ea_posterior.nc", engine="h5netcdf") as dt:
        cd = dt["constant_data"].to_dataset().load()
        y = dt["observed_data"]["ln_flux"].to_numpy()
    frame = pd.DataFrame({k: cd[k].to_numpy() for k in cd.data_vars})
    return frame.assign(y=y)


def test_residual_table_shows_rho_and_the_lag1_autocorrelation_of_the_data(daily_run):
    cv_report = daily_run
    frame = pd.read_csv(cv_report / "tables" / "residual_autocorrelation.csv").set_index("flux_class")
    summary = pd.read_csv(cv_report / "ea_summary.csv")
    obs = _constant(cv_report)
    with xr.open_datatree(cv_report / "ea_posterior.nc", engine="h5netcdf") as dt:
        post = dt["posterior"].to_dataset().load()
    lo, mid, hi = conventions.CI_QUANTILES
    for cls, row in frame.iterrows():  # ρ from the draws
        draws = _draws(post, "rho", flux_class=cls)
        np.testing.assert_allclose([row["median"], row["ci_low"], row["ci_high"]],
                                   np.quantile(draws, [mid, lo, hi]), rtol=1e-10)
    # lag-1 autocorrelation of separate weighted least-squares residuals per group, recomputed here
    resid = np.empty(len(obs))
    for _, g in obs.groupby("obs_group"):
        X = np.column_stack([np.ones(len(g)), g["x"]])
        W = g["weight"].to_numpy()
        beta = np.linalg.lstsq(X * np.sqrt(W)[:, None], g["y"].to_numpy() * np.sqrt(W), rcond=None)[0]
        resid[g.index] = g["y"].to_numpy() - X @ beta
    pairs = obs.index[(obs["obs_previous"] >= 0) & (obs["gap_days"] == 1)]
    assert len(pairs) > 100
    for cls, idx in pd.Series(pairs).groupby(obs.loc[pairs, "obs_flux_class"].to_numpy()):
        j = obs.loc[idx, "obs_previous"].to_numpy()
        r = np.sum(resid[idx] * resid[j]) / np.sqrt(np.sum(resid[idx] ** 2) * np.sum(resid[j] ** 2))
        assert frame.loc[cls, "resid_lag1_iid"] == pytest.approx(r, abs=1e-8), cls
    for quantity in ("resid_lag1_ar1", "n_eff_days"):
        saved = summary[summary["quantity"] == quantity].set_index("flux_class")["mean"]
        np.testing.assert_allclose(frame.loc[saved.index, quantity], saved, rtol=1e-12)
    counts = obs["obs_flux_class"].value_counts()
    assert (frame["n_days"] == counts.reindex(frame.index)).all()
    methods_text = (cv_report / "methods.md").read_text(encoding="utf-8")
    for cls, row in frame.iterrows():
        assert f"{cls.replace('_', ' ')} ρ = {row['median']:.2f}" in methods_text


def _range(text: str, quantity: str) -> tuple[float, float]:
    lo, hi = str(text).replace(" °C", "").split("-") if quantity == "Q10" else ("0", "30")
    return float(lo), float(hi)


def test_q10_and_fold_change_are_marked_where_they_extrapolate(daily_run):
    import tpflux

    cv_report = daily_run
    table = pd.read_csv(cv_report / "tables" / "temperature_sensitivity.csv")
    obs = _constant(cv_report)
    seen = obs.groupby(["obs_flux_class", "obs_season"])["soil_temp_c"].agg(["min", "max"])
    marked = 0
    for row in table.itertuples():
        lo, hi = _range(row.temp_range, row.quantity)
        t_min, t_max = seen.loc[(row.flux_class, row.season)]
        beyond = lo < t_min or hi > t_max
        assert (row.extrapolation != "within the observed range") == beyond, row
        if beyond:
            assert f"observed {t_min:.1f} to {t_max:.1f} °C" in row.extrapolation
        marked += beyond
    assert 0 < marked < len(table), "both kinds of rows are exercised"
    text = tpflux.load(cv_report).result_text()
    assert text.count("* extrapolated:") == marked
    summary = pd.read_csv(cv_report / "ea_summary.csv")
    assert int(summary["extrapolated"].astype(str).eq("True").sum()) == marked
    assert f"{marked} of {len(table)} Q10 and fold-change values" in (cv_report / "methods.md").read_text(
        encoding="utf-8")


def test_held_out_check_is_shown_when_the_folder_holds_one(cv_report):
    cv = pd.read_csv(cv_report / "crossvalidation" / "crossvalidation.csv")
    groups = cv[cv["site"] != "ALL"].dropna(subset=["inside_95"])
    table = pd.read_csv(cv_report / "tables" / "crossvalidation_coverage.csv")
    every = table.iloc[-1]
    assert every["coverage"] == pytest.approx(groups["inside_95"].mean())
    assert every["coverage"] == pytest.approx(cv["coverage_95"].dropna().iloc[-1])
    assert every["n_groups"] == len(groups) and every["n_sites"] == groups["site"].nunique()
    for row in table.iloc[:-1].itertuples():
        part = groups[groups["flux_class"].str.replace("_", " ") == row.flux_class]
        assert row.coverage == pytest.approx(part["inside_95"].mean()) and row.n_groups == len(part)
    assert every["band_low"] < conventions.CI_PROB <= every["band_high"]
    assert (cv_report / "figures" / "crossvalidation_pit.png").stat().st_size > 1000
    html_text = (cv_report / "report.html").read_text(encoding="utf-8")
    assert "Held-out check: coverage of new-site predictions" in html_text
    assert f"coverage {every['coverage']:.3f}" in (cv_report / "methods.md").read_text(encoding="utf-8")


def test_report_without_a_held_out_check_says_how_to_add_one(ea_report):
    text = (ea_report[0] / "report.html").read_text(encoding="utf-8")
    assert "No held-out check in this run folder" in text and "crossvalidate_ea" in text
    assert not (ea_report[0] / "tables" / "crossvalidation_coverage.csv").exists()


def test_held_out_check_of_another_run_is_refused(cv_report, tmp_path, capsys):
    import shutil

    folder = tmp_path / "run"
    shutil.copytree(cv_report, folder, ignore=shutil.ignore_patterns(*build.REPORT_ENTRIES))
    path = folder / "crossvalidation" / "crossvalidation.csv"
    cv = pd.read_csv(path)
    cv.loc[0, "site"] = "US-XYZ"
    cv.to_csv(path, index=False)
    assert build.main([str(folder)]) == runio.EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "US-XYZ" in err[0] and "another run" in err[0]
    assert not (folder / "report.html").exists()


def test_report_says_which_e_to_cite(ea_report):
    out = ea_report[0]
    for text in ((out / "report.html").read_text(encoding="utf-8"), (out / "methods.md").read_text(encoding="utf-8")):
        assert "the number to cite" in text and "E_site_mean" in text


def test_budget_report_shows_the_side_by_side_with_the_r_code(tmp_path):
    """A budget run compared with benchmarks/globalc_reference.csv (the R script's output): a run
    whose numbers equal R's is within tolerance on every compared row, and the report shows it."""
    from benchmarks import globalc_reference as gr
    from models.budget import VARIANTS

    r = pd.read_csv(gr.R_CSV)
    folder = tmp_path / "budget"
    folder.mkdir()
    rows = [dict(row, variant=name) for name, v in VARIANTS.items() if v.r_counterpart
            for row in r[r["r_variant"] == v.r_counterpart].drop(columns="r_variant").to_dict("records")]
    pd.DataFrame(rows).to_csv(folder / "budget_summary.csv", index=False)
    assert gr.main(["--run", str(folder)]) == 0
    table = pd.read_csv(folder / "budget_vs_rcode.csv")
    judged = table[table["within"].notna()]
    assert len(judged) > 50 and judged["within"].astype(bool).all()
    assert set(table.loc[table["within"].isna(), "variant"]) == {"period-unweighted"}  # no R twin
    assert build.main([str(folder)]) == runio.EXIT_OK
    assert "GlobalC R code" in (folder / "report.html").read_text(encoding="utf-8")


def test_methods_name_the_classes_kept_with_independent_residuals(tmp_path, monkeypatch):
    """An AR(1) run whose only class is weekly chamber visits: the methods say its residuals were
    independent and why, not that they were AR(1)."""
    from benchmarks.small_designs import DESIGNS, simulate_design
    from tests.helpers import mock_sampling

    import tpflux

    mock_sampling(monkeypatch)
    monkeypatch.setattr(build, "FIGURE_DPI", 60)
    fit = tpflux.fit_ea(simulate_design(DESIGNS["wetland-3-weekly"], 1), chains=2, draws=50,
                        tune=50, progress=False)
    folder = fit.save(tmp_path / "run")
    assert build.main([str(folder)]) == runio.EXIT_OK
    text = (folder / "report.html").read_text(encoding="utf-8")
    assert "Residuals of wetland emission were taken as independent" in text
    assert "daily AR(1) in continuous time" not in text
