"""Paper-ready report of saved runs: one self-contained HTML page per run folder.

    python -m reports.build RUN_DIR [RUN_DIR …]

Reads only what a job saved (fit_ea, fit_rr, project, budget or compare_seasons, detected from the
run marker or the file names; for fit_ea also its held-out check, a crossvalidate_ea folder inside
RUN_DIR) and writes into each RUN_DIR:

    report.html                 figures embedded, tables, methods paragraph, BARG checklist
    figures/NAME.png, NAME.pdf  every figure of the report
    tables/NAME.csv, .md, .tex  every table (CSV at full precision; LaTeX needs booktabs)
    methods.md, methods.tex     the methods paragraph generated from the run's attrs

Every posterior number and interval is computed from the saved DataTree with the project's single
interval convention (models.conventions). Exit codes: 0 success; 2 bad input (a folder that is not
a run, an unreadable, truncated or inconsistent file: one line on stderr, nothing written).

The report is written as a whole: drawn into a hidden temporary folder inside RUN_DIR, then moved
into place, the previous report.html first out and the new one last in, so report.html never sits
beside half-drawn or previous figures and tables; a failed or killed build leaves the previous
report or none, and the next build removes what a killed one left.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import importlib
import inspect
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from data import storage
from data.errors import DataError
from models import conventions
from models.conventions import EA_GATED_VARIABLES, EA_SAMPLED_VARIABLES, EXIT_OK, cli, progress
from models.summary import gate_failures
from reports import diagnostic_figures, ea_figures, html, load, methods, tables
from reports.load import Run, load_run

# PNG resolution: sharp in the HTML page and in print at the figures' sizes; the PDFs are vector.
FIGURE_DPI = 120
# zlib's fastest level: the default (6) takes longer than drawing some figures for files 5–10 % smaller.
PNG_OPTIONS = {"compress_level": 1}
# Draws per chain shown in rank and trace plots (evenly thinned): more add drawing time, not information.
PLOT_MAX_DRAWS = 250
# What a report consists of inside RUN_DIR; report.html is moved in last (see ``install``).
REPORT_ENTRIES = ("figures", "tables", "methods.md", "methods.tex", "report.html")
STAGING_PREFIX = ".report."


@dataclasses.dataclass
class Report:
    run: Run
    tables: list[tables.Table] = dataclasses.field(default_factory=list)
    figures: list[html.FigureItem] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    methods: methods.Methods | None = None
    convergence: dict | None = None
    out: Path | None = None  # where the report is drawn (a staging folder); None: the run folder

    @property
    def folder(self) -> Path:
        return self.out if self.out is not None else self.run.path

    @property
    def fig_dir(self) -> Path:
        return self.folder / "figures"

    @property
    def table_dir(self) -> Path:
        return self.folder / "tables"

    def table(self, name: str) -> tables.Table | None:
        return next((t for t in self.tables if t.name == name), None)

    def add_figure(self, name: str, title: str, caption: str, make) -> None:
        """Draw a figure (a callable returning a Figure or None) and save it as PNG and PDF."""
        fig = make()
        if fig is None:
            self.notes.append(f"Figure '{title}' was not drawn: the run lacks the data it needs.")
            return
        png, pdf = save_figure(fig, self.fig_dir, name)
        self.figures.append(html.FigureItem(name, title, caption, png,
                                            (f"figures/{png.name}", f"figures/{pdf.name}")))

    def add_figures(self, batch: str, specs: list[tuple]) -> None:
        """``add_figure`` for each (name, title, caption, make), announced as one batch: a progress
        line, and a bar while it draws when stderr is a terminal."""
        progress(f"{self.run.path}: figures: {batch} ({len(specs)})")
        bar = sys.stderr.isatty()
        for k, spec in enumerate(specs):
            if bar:
                done = "#" * k + "-" * (len(specs) - k)
                print(f"\r  [{done}] {spec[0]:<30}", end="", file=sys.stderr, flush=True)
            self.add_figure(*spec)
        if bar:
            print(f"\r  [{'#' * len(specs)}] {'':<30}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- saving
def save_figure(fig: Figure, folder: Path, name: str) -> tuple[Path, Path]:
    """figures/NAME.png and NAME.pdf, each written atomically; a pyplot-managed figure is closed."""
    folder = Path(folder)
    try:
        # No "tight" bounding box (a second draw); a layout engine (constrained) is solved in the
        # PNG's draw and its result kept for the PDF: solving it again costs as much as a draw.
        png = storage.save_figure(fig, folder / f"{name}.png", dpi=FIGURE_DPI, pil_kwargs=PNG_OPTIONS)
        fig.set_layout_engine("none")
        return png, storage.save_figure(fig, folder / f"{name}.pdf", dpi=FIGURE_DPI)
    finally:
        if fig.canvas.manager is not None:  # made through pyplot (another module's figure): release it
            import matplotlib.pyplot as plt

            plt.close(fig)


def png_to_pdf(png: Path) -> Path:
    """A PDF beside a PNG drawn by a module that writes PNG only (raster inside)."""
    from PIL import Image

    pdf = png.with_suffix(".pdf")
    with storage.atomic_path(pdf) as tmp, Image.open(png) as im:
        im.convert("RGB").save(tmp, format="PDF", resolution=FIGURE_DPI)
    return pdf


# ---------------------------------------------------------------- fit_ea
def build_ea(rep: Report) -> Report:
    run = rep.run
    tree = run.tree
    progress(f"{run.path}: tables")
    rep.convergence = tables.convergence_summary(tree, EA_GATED_VARIABLES)
    rep.tables = tables.ea_tables(tree, rep.convergence, run.summary)
    rep.notes.append(tables.CITE_E)
    _check_against_saved_summary(rep)

    _result_figures(rep)
    _crossvalidation(rep)
    _diagnostic_figures(rep, EA_SAMPLED_VARIABLES)
    _predictive_figures(rep)
    residual = rep.table("residual_autocorrelation")
    coverage = rep.table("crossvalidation_coverage")
    rep.methods = methods.ea_methods(run, rep.convergence,
                                     residual.data if residual is not None else None,
                                     coverage.data if coverage is not None else None)
    sens = rep.table("prior_sensitivity")
    _add_barg(rep, sens.data if sens is not None else None)
    return rep


def _check_against_saved_summary(rep: Report) -> None:
    """Compare the recomputed E intervals with the job's own ea_summary.csv."""
    saved = rep.run.summary
    table = rep.table("activation_energy")
    if saved is None or table is None:
        return
    mine = table.data[table.data["quantity"] == "E"].set_index(["flux_class", "season"])
    theirs = saved[saved["quantity"] == "E"].set_index(["flux_class", "season"])
    cols = ["median", "ci_low", "ci_high"]
    joined = mine[cols].merge(theirs[cols], left_index=True, right_index=True, suffixes=("", "_saved"))
    if joined.empty:
        return
    diff = max(float(np.nanmax(np.abs(joined[c] - joined[f"{c}_saved"]))) for c in cols)
    if diff > 1e-9:
        rep.notes.append(f"The intervals recomputed from ea_posterior.nc differ from ea_summary.csv by up to "
                         f"{diff:.3g} eV: the interval convention ({conventions.CI_LABEL}) differs from the "
                         "one the fit used, or the files come from different runs.")
    else:
        rep.notes.append("The recomputed E intervals equal those in the run's ea_summary.csv.")


def _crossvalidation(rep: Report) -> None:
    """The held-out check, when the run folder holds one: coverage tables and the PIT histogram."""
    from reports.crossvalidation_figures import pit_histogram

    run = rep.run
    frame = run.extra_tables.get(load.CROSSVALIDATION_FILE)
    if frame is None:
        rep.notes.append("No held-out check in this run folder: python -m inference.crossvalidate_ea "
                         f"{run.path} --out {run.path / 'crossvalidation'} adds one to the report.")
        return
    rep.tables += tables.crossvalidation_tables(frame)
    folds = run.crossvalidation_diagnostics or {}
    if folds.get("verdict") == "fail":
        rep.notes.append(f"The held-out check's refits ({run.crossvalidation.parent}) failed their convergence "
                         f"gate ({len(folds.get('failed', []))} folds): its coverage is not yet reliable.")
    saved = frame["coverage_95"].dropna()
    shown = rep.table("crossvalidation_coverage").data["coverage"].iloc[-1]
    if len(saved) and not np.isclose(float(saved.iloc[-1]), shown, equal_nan=True):
        rep.notes.append(f"The held-out coverage recomputed from {run.crossvalidation} ({shown:.3f}) "
                         f"differs from its saved coverage_95 ({float(saved.iloc[-1]):.3f}).")
    pit = frame.loc[frame["site"].astype(str) != "ALL", "pit"].dropna().to_numpy()
    rep.add_figures("held-out check", [(
        "crossvalidation_pit", "Held-out check: PIT histogram",
        f"Probability integral transforms of the held-out site × class × season means under their "
        f"leave-one-site-out new-site predictive distributions ({run.crossvalidation}); grey: the "
        f"{conventions.CI_LABEL} of a bin count when the predictions are calibrated (uniform PIT). "
        "∪-shaped: intervals too narrow; ∩-shaped: too wide; sloped: biased.",
        lambda: pit_histogram(pit) if len(pit) else None)])


def _result_figures(rep: Report) -> None:
    run, tree, ci = rep.run, rep.run.tree, conventions.CI_LABEL
    specs = [
        ("temperature_response", "CH₄ flux vs soil temperature",
         f"Observations (grey) per flux class × season with the posterior median (line) and {ci} "
         "(band, pointwise) of the class × season curve F = ±exp(lnR + δ + E·x), x = 1/(kT_C) − "
         "1/(kT), for the measurement method most of the cell's observations use. The curve is "
         "the typical site (a geometric mean), so it lies below the arithmetic mean of skewed data.",
         lambda: ea_figures.temperature_response(tree)),
        ("arrhenius", "Arrhenius plot",
         f"ln|F| (F in {ea_figures.FLUX_UNIT}) against 1/kT in eV⁻¹ (top axis: soil temperature, °C), "
         "per flux class × season. Coloured points and lines: sites, named in the legend (posterior "
         "median line of each site's intercept and E over its temperature range); black: the class × "
         f"season line with its {ci}. A steeper fall to the right means a larger E.",
         lambda: ea_figures.arrhenius_plot(tree)),
    ]
    site, act = rep.table("site_activation_energy"), rep.table("activation_energy")
    if site is not None:
        pooled = act.data[act.data["quantity"] == "E"]
        specs.append(("activation_energy_forest", "Forest plot of E per site × season and pooled",
                      f"Posterior median and {ci} of E per site × season (points, lines) and of the "
                      "class × season E (diamonds) — the numbers of tables site_activation_energy and "
                      "activation_energy.",
                      lambda: ea_figures.activation_energy_forest(site.data, pooled, run.synthetic)))
    specs.append(("season_difference", "Posterior of ΔE",
                  f"Posterior density of ΔE per flux class with its {ci} (shaded) and median; the dashed "
                  "line marks ΔE = 0 and P(ΔE > 0) is the share of draws above it.",
                  lambda: ea_figures.season_difference(tree)))
    rep.add_figures("results", specs)


def _thinning_note(tree, step: int) -> str:
    """The caption sentence of a figure drawn from thinned draws ("" when it has them all)."""
    if step == 1:
        return ""
    post = tree["posterior"]
    kept = len(range(0, post.sizes["draw"], step))
    return (f" Drawn from one draw in {step} ({kept} of {post.sizes['draw']} per chain, evenly spaced); "
            "the tables and convergence numbers use every draw.")


def _diagnostic_figures(rep: Report, preferred) -> None:
    tree = rep.run.tree
    names = diagnostic_figures.default_var_names(tree, preferred)
    if not names:
        return
    step = diagnostic_figures.thinning_step(tree, PLOT_MAX_DRAWS)
    thinned = _thinning_note(tree, step)
    rep.add_figures("MCMC diagnostics", [
        ("rank", "Rank plots",
         "Fractional-rank ECDF minus the uniform CDF per chain (colour), one panel per parameter "
         "element (named above it): chains that mix well give flat curves near zero. p: multi-chain "
         "uniformity test of the ranks, with its level α; black points: where it flags a chain "
         "(Säilynoja et al. 2022)." + thinned,
         lambda: diagnostic_figures.rank_plot(tree, names, PLOT_MAX_DRAWS)),
        ("trace", "Trace plots", "Marginal posterior densities (left) and draws by iteration "
         "(right) of each sampled parameter (one row each, named with its unit): one colour per "
         "element of the parameter (legend at the right), one line style per chain; black ticks under "
         "the traces mark divergent transitions." + thinned
         + (" A kept draw is marked divergent when any of the draws it stands for diverged." if thinned else ""),
         lambda: diagnostic_figures.trace_plot(tree, names, PLOT_MAX_DRAWS)),
        ("energy", "Energy plot", "Marginal energy vs energy-transition distributions and E-BFMI "
         f"per chain; E-BFMI below {conventions.BFMI_LOW} signals poor exploration of the tails "
         "(Betancourt 2016).",
         lambda: diagnostic_figures.energy_plot(tree)),
    ])


def _predictive_figures(rep: Report) -> None:
    tree, n = rep.run.tree, diagnostic_figures.PREDICTIVE_DRAWS
    few = (f" Cells with fewer than {diagnostic_figures.ECDF_BELOW} observations show empirical CDFs; "
           "densities: Gaussian kernels with Silverman's bandwidth, observed and replicated alike.")
    ln_flux = ea_figures.LN_FLUX_LABEL
    rep.add_figures("predictive checks", [
        ("posterior_predictive", "Posterior predictive check",
         f"Does the fitted model reproduce the data? Density of ln|F| (F in {ea_figures.FLUX_UNIT}) "
         f"replicated from posterior draws (blue, one line per draw; up to {n} draws evenly spaced over "
         "the saved ones) over the observed density (black), per flux class × season: the black curve "
         "should lie within the blue bundle." + few,
         lambda: diagnostic_figures.predictive_plot(tree, "posterior_predictive", xlabel=ln_flux)),
        ("prior_predictive", "Prior predictive check",
         f"Do the priors allow the observed data? Blue band: the {conventions.CI_LABEL} (pointwise) of "
         f"the empirical CDFs of ln|F| data sets simulated from the priors alone (up to {n} draws), with "
         "their median (blue line); black: the observed empirical CDF, per flux class × season. A black "
         "curve inside the band means the priors cover the data; a band much wider than the data is "
         "expected of weakly informative priors.",
         lambda: diagnostic_figures.predictive_plot(tree, "prior_predictive", xlabel=ln_flux, band=True)),
    ])


def _add_barg(rep: Report, sensitivity: pd.DataFrame | None) -> None:
    figures = {f.name for f in rep.figures}
    frame = methods.barg_checklist(rep.run, figures, {t.name for t in rep.tables}, rep.convergence, sensitivity)
    rep.tables.append(tables.Table(
        "barg_checklist", "BARG checklist",
        "Bayesian analysis reporting guidelines (Kruschke 2021, Nat. Hum. Behav. 5:1282) with the status of "
        "each item for this run: done, attention (reported but needs action before publication), not done, "
        "n/a (does not apply).",
        frame, {"step": ("step", tables.TEXT), "item": ("item", tables.TEXT), "guideline": ("guideline", tables.TEXT),
                "status": ("status", tables.TEXT), "evidence": ("evidence", tables.TEXT)}))


# ---------------------------------------------------------------- other run kinds
def _external(rep: Report, module: str, names: tuple[str, ...], title: str, caption: str,
              figure: str | None = None) -> None:
    """Call another module's plotting function when it exists (imported lazily).

    A Figure it returns is saved as ``figure`` (default: the module's name; numbered when it
    returns several), so that several functions of one module each keep their own file.

    Its parameters are supplied by name: ``tree``/``dt``/``idata`` (the DataTree), ``summary``/``frame``
    (the summary CSV), ``run_dir``/``path``/``folder`` (the run folder), ``out_dir`` (figures/). It may
    return a Figure, a path, a list of paths, or None; a PNG-only function gets a PDF beside it
    (vector when it takes ``fmt``, else a raster copy).
    """
    try:
        mod = importlib.import_module(module)
    except ImportError:
        rep.notes.append(f"{title}: {module} is not available in this installation; section skipped.")
        return
    fn = next((getattr(mod, n) for n in names if callable(getattr(mod, n, None))), None)
    if fn is None:
        rep.notes.append(f"{title}: {module} has none of {', '.join(names)}; section skipped.")
        return
    run = rep.run
    supply = {"tree": run.tree, "dt": run.tree, "idata": run.tree, "summary": run.summary,
              "frame": run.summary, "run_dir": run.path, "path": run.path, "folder": run.path,
              "out_dir": rep.fig_dir}
    params = inspect.signature(fn).parameters
    kwargs = {n: supply[n] for n in params if n in supply}
    missing = [n for n, p in params.items() if n not in kwargs and p.default is inspect.Parameter.empty
               and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if missing:
        rep.notes.append(f"{title}: {module}.{fn.__name__} needs {', '.join(missing)}; section skipped.")
        return
    try:
        result = fn(**kwargs)
    except Exception as exc:  # another module's failure must not lose the rest of the report
        rep.notes.append(f"{title}: {module}.{fn.__name__} failed ({type(exc).__name__}: {exc}); section skipped.")
        return
    results = [r for r in (result if isinstance(result, (list, tuple)) else [result]) if r is not None]
    for k, item in enumerate(results):
        if isinstance(item, Figure):
            name = (figure or module.rsplit(".", 1)[-1]) + (f"_{k}" if len(results) > 1 else "")
            png, pdf = save_figure(item, rep.fig_dir, name)
        else:
            png = Path(item)
            if png.suffix.lower() != ".png" or not png.exists():
                continue
            name, pdf = png.stem, png.with_suffix(".pdf")
            if "fmt" in params and not pdf.exists():
                try:
                    fn(**kwargs, fmt="pdf")
                except Exception:  # the PNG stands; a raster PDF replaces the vector one below
                    pass
            if not pdf.exists():
                pdf = png_to_pdf(png)
        rel = [f"figures/{p.name}" if p.parent == rep.fig_dir else str(p) for p in (png, pdf)]
        label = title if len(results) == 1 else f"{title}: {name.replace('_', ' ')}"
        rep.figures.append(html.FigureItem(name, label, caption, png, tuple(rel)))


def _posterior_diagnostics(rep: Report) -> None:
    """Convergence figures and numbers of a run that saved MCMC draws."""
    tree = rep.run.tree
    if tree is not None and "posterior" in tree.children:
        rep.convergence = tables.convergence_summary(tree)
        _diagnostic_figures(rep, None)


def _summary_report(rep: Report, name: str, title: str, caption: str) -> Report:
    """A report that starts with the summary CSV the job saved (when there is one)."""
    run = rep.run
    if run.summary is not None:
        rep.tables.append(tables.frame_table(name, title, caption, run.summary))
    return rep


def _finish(rep: Report) -> Report:
    """The methods paragraph and the BARG checklist of a run other than fit_ea."""
    rep.methods = methods.generic_methods(rep.run, rep.convergence)
    _add_barg(rep, None)
    return rep


def build_rr(rep: Report) -> Report:
    from reports import forest_rr

    run = rep.run
    names = list(dict.fromkeys(run.summary["quantity"])) if run.summary is not None else []
    table = tables.posterior_table("rr_posterior", "Response ratios and heterogeneity", run.tree, names)
    if table is not None:
        rep.tables.append(table)
        done = set(table.data["quantity"])
        rest = run.summary[~run.summary["quantity"].isin(done)] if run.summary is not None else None
    else:
        rest = run.summary
    if rest is not None and len(rest):
        rep.tables.append(tables.frame_table("rr_summary", "Meta-analysis summary (saved by fit_rr)",
                                             "Rows of rr_summary.csv not recomputed from the draws.", rest))
    _posterior_diagnostics(rep)
    ci = conventions.CI_LABEL
    _external(rep, "reports.forest_rr", ("forest_figure", "save_forest"), "RR forest plot",
              "Observed response ratio RR (treatment / control flux, unitless, log axis) of each experiment "
              f"with its {ci} sampling interval (marker area ∝ weight 1/vi), grouped by level of the first "
              f"moderator; pooled RR per level (diamond: posterior median and {ci}) and the prediction "
              "interval for a new experiment (thin bar).", Path(forest_rr.FOREST_FIGURE).stem)
    _external(rep, "reports.forest_rr", ("funnel_figure",), "Funnel plot",
              "Residual lnRR of each experiment (observed minus the posterior median of its moderators' fitted "
              "part) against its standard error √vi, precise experiments at the top; dashed: the "
              f"{ci} pseudo-confidence funnel around zero. An asymmetric cloud hints at small-study effects "
              "(the Egger-type test quantifies it).", Path(forest_rr.FUNNEL_FIGURE).stem)
    # Optional analyses: each figure function returns None when the run lacks its table.
    files = {table: Path(png).stem for table, _, png in forest_rr.EXTRA_FIGURES}
    for fn, title, caption, csv in (
            ("influence_figure_of_run", "Leave-one-study-out influence",
             f"Posterior median and {ci} of lnRR per level with each study left out in turn (rows); dashed: "
             "the posterior mean from all studies; hollow red markers: studies whose Pareto k exceeded 0.7, "
             "refitted exactly instead of approximated by importance sampling.", forest_rr.LEAVE1OUT_FILE),
            ("cumulative_figure_of_run", "Cumulative estimates",
             f"Posterior median and {ci} of lnRR per level (colour) after each study is added, in order of "
             "year: a drift down the rows is a time trend or an early-study effect.", forest_rr.CUMULATIVE_FILE),
            ("sensitivity_figure_of_run", "τ-prior sensitivity",
             f"Posterior median and {ci} of the between-experiment SD τ (left) and of lnRR per level (right, "
             "colour) under each prior on τ (rows): rows that agree mean the conclusions do not hinge on "
             "the τ prior.", forest_rr.SENSITIVITY_FILE),
            (None, "Small-study (Egger-type) test", "", "rr_small_study.csv")):
        if run.file(csv) is None:
            continue
        if fn is not None:
            _external(rep, "reports.forest_rr", (fn,), title, caption, files[csv])
        rep.tables.append(tables.frame_table(Path(csv).stem, title, f"From {csv}.",
                                             storage.read_csv(run.file(csv))))
    return _finish(rep)


def build_project(rep: Report) -> Report:
    from models.scenarios import caveats

    run = rep.run
    if run.summary is not None:  # what the numbers cannot claim, before the numbers
        rep.notes.extend(caveats(run.summary))
    rep = _summary_report(rep, "projection_summary", "Projected CH₄ flux by scenario, mode, class and period",
                          f"Totals and paired changes with their {conventions.CI_LABEL} as saved by the "
                          "projection job. P_increase: in every row, the probability that the signed "
                          "total (emission positive, uptake negative) exceeds the control's (more net "
                          "emission). Site totals come from each site's day-of-year climatology; "
                          "withheld rows (column withheld) have an incomplete record or, for RF-direct, "
                          "a forest without cross-site skill (forest_skill ≤ 0); n_days: observed days "
                          "a row rests on.")
    for name, title in (("forest_skill.csv", "Random-forest leave-one-site-out skill"),
                        ("forest_importance.csv", "Random-forest driver importance")):
        if run.file(name) is not None:
            frame = storage.read_csv(run.file(name))
            rep.tables.append(tables.frame_table(Path(name).stem, title, f"From {name}.", frame))
    _external(rep, "reports.projection_figures", ("make_figures",), "Projection",
              f"Annual CH₄ totals and paired changes versus control against soil warming for both "
              f"projection modes (bands: {conventions.CI_LABEL}), the change at the warmest scenario "
              "by period, and maps for gridded runs; withheld modes are not drawn and their panels "
              "say why.")
    return _finish(rep)


# The side-by-side table of a budget run against the authors' R code, when it has one.
RCODE_COMPARISON = "budget_vs_rcode.csv"


def build_budget(rep: Report) -> Report:
    from reports import budget_figures

    run = rep.run
    rep = _summary_report(rep, "budget_summary", "Global GPP and soil-respiration budget",
                          f"Medians and {conventions.CI_LABEL} as saved by the budget job.")
    _posterior_diagnostics(rep)
    if run.file(RCODE_COMPARISON) is not None:  # written by python -m benchmarks.globalc_reference --run
        rep.tables.append(tables.frame_table(
            Path(RCODE_COMPARISON).stem, "Budget variants against the GlobalC R code",
            "Each variant beside the authors' R computation it corresponds to (median within 2 %, "
            "interval bounds within 5 %, agreement probabilities within 0.01 absolute).",
            storage.read_csv(run.file(RCODE_COMPARISON))))
    draws = run.extra_trees.get("budget_draws.nc")  # read and checked with the run
    if draws is None:
        rep.notes.append("Budget densities: the run has no budget_draws.nc; figures skipped.")
        return _finish(rep)
    variant = str(draws["resampling"]["variant"].values[0])
    ci = conventions.CI_LABEL
    rep.add_figure(f"budget_consistency_{variant}", "Budget densities",
                   f"Resampled densities (variant '{variant}') of global GPP (top) and soil respiration R_S "
                   "(bottom), Pg C yr⁻¹: the direct literature estimate (blue) and the estimate implied by the "
                   f"other flux (red), medians and {ci}s in the legend. Light band: the {ci} of the direct "
                   "estimate; dark red: the implied density inside it, whose area is P(agree). Dashed: the "
                   "Bayesian pooling model's posteriors, where the run has them.",
                   lambda: budget_figures.consistency_figure(draws, run.summary, variant))
    if "rf_map" in draws.children:
        rep.add_figure("budget_rf_map", "Random-forest soil respiration map",
                       "Annual soil respiration (g C m⁻² yr⁻¹) upscaled by the random forest on the grid of "
                       f"its drivers; the title gives the global total with its {ci} over the trees.",
                       lambda: budget_figures.rf_map_figure(draws))
    return _finish(rep)


def _comparison_gates(rep: Report) -> None:
    """The convergence of a model comparison's fits (their draws are not kept: their gates are in
    diagnostics.json), and a note for each model whose gate failed."""
    run = rep.run
    diag = run.diagnostics or {}
    if "r_hat_max" in diag:
        rep.convergence = {**diag, "chains": run.config.get("chains"), "draws": run.config.get("draws"),
                           "mean_tree_depth": None}
    for model, verdict in (diag.get("models") or diag.get("schemes") or {}).items():
        if verdict.get("verdict") != "pass":
            rep.notes.append(f"Model {model}: convergence gate FAILED ("
                             + "; ".join(verdict.get("failed", [])) + "): its ELPD is not reliable.")


def build_compare_seasons(rep: Report) -> Report:
    from reports.comparison_figures import elpd_difference

    run = rep.run
    rep.tables = tables.season_comparison_tables(run.summary, run.extra_tables)
    _comparison_gates(rep)
    specs = [("elpd_difference", "ΔELPD of each model to the best",
              f"ELPD difference of each season scheme × residual model to the best one (points) with "
              f"±{conventions.ELPD_DISTINCT_SE:g} standard errors of the difference (lines), overall and "
              f"per flux class; the dashed line is the best model. A difference within "
              f"{conventions.ELPD_DISTINCT_SE:g} SE, or smaller than {conventions.ELPD_NEGLIGIBLE:g}, "
              "does not tell the models apart.",
              lambda: elpd_difference(run.summary, run.extra_tables.get("season_comparison_by_class.csv")))]
    rep.add_figures("season comparison", specs)
    return _finish(rep)


def build_compare_covariate(rep: Report) -> Report:
    from reports.comparison_figures import elpd_difference

    run = rep.run
    covariate = run.config.get("covariate") or "the covariate"
    rep.tables = tables.covariate_comparison_tables(run.summary, run.extra_tables, covariate)
    _comparison_gates(rep)
    specs = [("elpd_difference", f"ΔELPD with and without {covariate}",
              f"ELPD difference of each model (none: without a covariate) to the best one (points) "
              f"with ±{conventions.ELPD_DISTINCT_SE:g} standard errors of the difference (lines); the "
              f"dashed line is the best model. A difference within {conventions.ELPD_DISTINCT_SE:g} SE, "
              f"or smaller than {conventions.ELPD_NEGLIGIBLE:g}, does not tell the models apart.",
              lambda: elpd_difference(run.summary, ylabel="covariate"))]
    rep.add_figures("covariate comparison", specs)
    return _finish(rep)


BUILDERS = {"fit_ea": build_ea, "fit_rr": build_rr, "project": build_project, "budget": build_budget,
            "compare_seasons": build_compare_seasons, "compare_covariate": build_compare_covariate}
TITLES = {"fit_ea": "Activation energy of CH₄ flux (fit_ea)", "fit_rr": "Warming meta-analysis (fit_rr)",
          "project": "CH₄ projections (project)", "budget": "Carbon-budget consistency (budget)",
          "compare_seasons": "Season schemes and residual models compared (compare_seasons)",
          "compare_covariate": "A covariate's moderation of E compared by PSIS-LOO (compare_covariate)"}


# ---------------------------------------------------------------- writing
def write_report(rep: Report) -> Path:
    """Write the report's files into ``rep.folder`` (the staging folder when building)."""
    folder = rep.folder
    for table in rep.tables:
        tables.write_table(table, rep.table_dir)
    if rep.methods is not None:
        refs = methods.references()
        storage.write_text(folder / "methods.md", rep.methods.text + "\n\nReferences\n\n"
                         + "\n".join(f"- {r}" for r in refs) + "\n")
        storage.write_text(folder / "methods.tex", "% Methods paragraph generated by python -m reports.build\n"
                         + rep.methods.latex + "\n")
    return storage.write_text(folder / "report.html", render(rep))


def _pid_of(staging: Path) -> int | None:
    try:
        return int(staging.name[len(STAGING_PREFIX):].split(".")[0])
    except ValueError:
        return None


def remove_stale_staging(folder: Path) -> None:
    """Staging folders of builds that were killed (their process is gone)."""
    for path in Path(folder).glob(f"{STAGING_PREFIX}*"):
        pid = _pid_of(path)
        if path.is_dir() and (path.suffix == ".old" or pid is None or not storage.pid_alive(pid)):
            shutil.rmtree(path, ignore_errors=True)


def install(staging: Path, folder: Path) -> Path:
    """Move a complete report from ``staging`` into ``folder``, replacing the previous one whole.

    The previous report.html goes first and the new one comes last, each entry by one rename: at
    no moment does a report.html sit beside a half-written or previous figures/ or tables/, and
    entries the new report lacks are removed.
    """
    old = Path(tempfile.mkdtemp(dir=folder, prefix=f"{STAGING_PREFIX}{os.getpid()}.", suffix=".old"))
    moved_out, moved_in = [], []
    try:
        for name in ("report.html", *REPORT_ENTRIES[:-1]):
            if os.path.lexists(folder / name):
                os.replace(folder / name, old / name)
                moved_out.append(name)
        for name in REPORT_ENTRIES:
            if os.path.lexists(staging / name):
                os.replace(staging / name, folder / name)
                moved_in.append(name)
    except BaseException:
        # put the previous report back (report.html last), best effort: a failure here leaves no
        # report.html, never one beside a mix
        for name in reversed(moved_in):
            with contextlib.suppress(OSError):
                os.replace(folder / name, staging / name)
        for name in sorted(moved_out, key=lambda n: n == "report.html"):
            with contextlib.suppress(OSError):
                os.replace(old / name, folder / name)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)
    return folder / "report.html"


@contextlib.contextmanager
def _folder_lock(folder: Path):
    """The run folder's write lock (a job writing the folder, or another build, is refused)."""
    try:
        lock = storage.run_lock(folder)
        lock.__enter__()
    except PermissionError:  # the lock lives beside the folder; a read-only parent has none
        yield
        return
    try:
        yield
    finally:
        lock.__exit__(None, None, None)


def _as_data_error(folder: Path, exc: Exception) -> DataError:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DataError(folder, None, None, "the disk filled up while writing the report; a previous "
                         "report was kept as it was", "free some space and build again")
    text = " ".join(str(exc).split())
    if isinstance(exc, OSError):
        return DataError(folder, None, None, f"cannot write the report ({type(exc).__name__}: {text}); "
                         "a previous report was kept as it was", "check the folder and the disk, and build again")
    return DataError(folder, None, None, f"the run's files are incomplete or inconsistent "
                     f"({type(exc).__name__}: {text})", "re-run the job that wrote the folder")


@contextlib.contextmanager
def bad_files_are_data_errors(folder: Path):
    """Turn what a malformed run folder raises while it is read or reported (a missing key or
    column, an unreadable value, an HDF5 error) into the one-line ``DataError``."""
    try:
        yield
    except DataError:
        raise
    except (KeyError, IndexError, ValueError, TypeError, RuntimeError, OSError) as exc:
        raise _as_data_error(Path(folder), exc) from None


def build_run(run: Run) -> Path:
    """Draw the report of a loaded run into a staging folder inside it, then install it whole.

    Any failure (bad or inconsistent files, a full disk) is a ``DataError`` and leaves the run
    folder as it was: the previous report, or none."""
    folder = run.path
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DataError(folder, None, None, "the run folder cannot be written (permission denied)",
                        "copy the run folder somewhere you can write and build there")
    with _folder_lock(folder):
        remove_stale_staging(folder)
        try:
            staging = Path(tempfile.mkdtemp(dir=folder, prefix=f"{STAGING_PREFIX}{os.getpid()}.",
                                            suffix=".tmp"))
        except OSError as exc:
            raise _as_data_error(folder, exc) from None
        try:
            with bad_files_are_data_errors(folder):
                rep = BUILDERS[run.kind](Report(run, out=staging))
                write_report(rep)
                return install(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _verdict_banner(rep: Report) -> str:
    conv = rep.convergence
    if conv is None:
        return ""
    gate = conventions.GATE
    failed = gate_failures(conv)
    if failed:
        return html.banner("Diagnostics: FAIL — " + "; ".join(failed)
                           + ". Do not cite these numbers; sample longer and rebuild.", "fail")
    return html.banner(f"Diagnostics: pass (R-hat ≤ {gate['r_hat_max']}, ESS ≥ {gate['ess_bulk_min']}, "
                       f"{conv['divergences']} divergences).", "pass")


# Tables shown first, under "Key results", in this order where a report has them.
HEADLINE_TABLES = ("activation_energy", "season_difference", "residual_autocorrelation",
                   "crossvalidation_coverage", "season_comparison", "season_comparison_by_class",
                   "season_comparison_left_out")


def render(rep: Report) -> str:
    run = rep.run
    banners = []
    if run.synthetic:
        banners.append(html.banner("SYNTHETIC DATA — these results come from simulated data, not observations.",
                                   "synthetic"))
    verdict = _verdict_banner(rep)
    if verdict:
        banners.append(verdict)
    banners += [html.banner(n, "note") for n in rep.notes]

    def tab(t):
        return html.table_html(t, tuple(f"tables/{t.name}.{ext}" for ext in ("csv", "md", "tex")))

    figs = {f.name: f for f in rep.figures}
    diagnostic_figs = ("rank", "trace", "energy", "posterior_predictive", "prior_predictive")
    headline = sorted((t for t in rep.tables if t.name in HEADLINE_TABLES),
                      key=lambda t: HEADLINE_TABLES.index(t.name))
    diag_tables = [t for t in rep.tables if t.name in ("convergence", "prior_sensitivity")]
    other_tables = [t for t in rep.tables if t not in headline + diag_tables and t.name != "barg_checklist"]
    sections = []
    if headline:
        sections.append(("results", "Key results", "".join(tab(t) for t in headline)))
    result_figs = [f for n, f in figs.items() if n not in diagnostic_figs]
    if result_figs:
        sections.append(("figures", "Figures", "".join(html.figure_html(f) for f in result_figs)))
    if other_tables:
        sections.append(("tables", "Tables", "".join(tab(t) for t in other_tables)))
    diag = "".join(tab(t) for t in diag_tables) + "".join(
        html.figure_html(figs[n]) for n in diagnostic_figs if n in figs)
    if diag:
        sections.append(("diagnostics", "Diagnostics", diag))
    if rep.methods is not None:
        refs = "<ul>" + "".join(f"<li>{html.esc(r)}</li>" for r in methods.references()) + "</ul>"
        sections.append(("methods", "Methods", html.paragraph(rep.methods.text, "methods")
                         + '<p class="files">Files: <a href="methods.md">methods.md</a> · '
                           '<a href="methods.tex">methods.tex</a></p>' + "<h3>References</h3>" + refs))
    barg = next((t for t in rep.tables if t.name == "barg_checklist"), None)
    if barg is not None:
        sections.append(("barg", "BARG checklist", tab(barg)))
    sections.append(("provenance", "Provenance", _provenance(run)))
    subtitle = (f"Run folder {run.path.resolve()} · created {run.attrs.get('created', 'unknown')} · "
                f"intervals: {conventions.CI_LABEL}")
    return html.page(TITLES.get(run.kind, run.kind), subtitle, banners, sections)


def _provenance(run: Run) -> str:
    items = {"run kind": run.kind, "folder": str(run.path.resolve()),
             "created": run.attrs.get("created", "–"), "command line": run.attrs.get("command_line", "–"),
             "seed": run.attrs.get("seed", "–"), "data SHA-256": run.attrs.get("data_sha256", "–"),
             "software": methods.software_versions(run.versions) or "–",
             "interval convention": conventions.CI_LABEL}
    out = html.definition_list(items)
    if run.config:
        out += "<h3>Run configuration (tpflux_config)</h3><pre>" + html.esc(
            json.dumps(run.config, indent=2, sort_keys=True)) + "</pre>"
    if run.diagnostics:
        out += "<h3>diagnostics.json</h3><pre>" + html.esc(json.dumps(run.diagnostics, indent=2)) + "</pre>"
    return out


def build(folder: Path | str) -> Path:
    """Build the report of one run folder; returns the path of report.html."""
    with bad_files_are_data_errors(folder):
        run = load_run(folder)
    return build_run(run)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m reports.build", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Writes RUN_DIR/report.html, figures/, tables/, methods.md, methods.tex.")
    p.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR",
                   help="folder written by python -m inference.fit_ea, fit_rr, project, budget or "
                        "compare_seasons")
    return p


@cli
def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    runs = []
    for folder in args.run_dirs:  # all inputs checked before anything is written
        with bad_files_are_data_errors(folder):
            runs.append(load_run(folder))
    for run in runs:
        progress(f"{run.path}: {run.kind} report")
        print(build_run(run))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
