"""Figure contract of every report kind: what a journal asks of a figure, checked on the Figures
a real build draws.

Each run kind (fit_ea with its held-out check and with a covariate, fit_rr with its optional
analyses, budget, compare_seasons, compare_covariate) is fitted small (NUTS replaced by prior draws) and reported with
``python -m reports.build``; the Figures are caught as the builder saves them. Every panel that
shows data must name both axes (on itself, on a panel of the same grid column or row, or in a
figure-level label); an axis whose ticks are numbers must name its unit; no two figures of a
report may share a caption.
"""

from __future__ import annotations

import re

import pytest
from matplotlib.ticker import FixedFormatter, NullFormatter

from reports import build
from tests.helpers import EXAMPLES, mock_sampling

# A unit: in brackets or parentheses, or one of the words that name a unit-free quantity.
UNIT = re.compile(r"[(\[]|\b(unitless|dimensionless|probability|count)\b", re.IGNORECASE)
NUMBER = re.compile(r"^[−+-]?(\d+\.?\d*|\.\d+)([eE][−+-]?\d+)?$")


def _build(monkeypatch, folder) -> tuple[dict, list]:
    """Build the report of ``folder``: ({figure name: Figure}, [(figure name, caption)])."""
    figures, captions = {}, []
    save, write = build.save_figure, build.write_report

    def caught_save(fig, where, name):
        figures[name] = fig
        return save(fig, where, name)

    def caught_write(rep):
        captions.extend((f.name, f.caption) for f in rep.figures)
        return write(rep)

    monkeypatch.setattr(build, "save_figure", caught_save)
    monkeypatch.setattr(build, "write_report", caught_write)
    monkeypatch.setattr(build, "FIGURE_DPI", 50)  # the labels, not the resolution, are under test
    assert build.main([str(folder)]) == 0
    return figures, captions


def _quantitative(axis) -> bool:
    """An axis whose visible tick labels are numbers (not names set with the ticks, not hidden)."""
    if isinstance(axis.get_major_formatter(), (FixedFormatter, NullFormatter)):
        return False
    lo, hi = sorted(axis.get_view_interval())
    shown = [t.label1.get_text() for t in axis.get_major_ticks()
             if t.label1.get_visible() and lo <= t.get_loc() <= hi]
    shown = [s.replace("$", "").replace("\\mathdefault{", "").replace("}", "") for s in shown if s.strip()]
    return bool(shown) and all(NUMBER.match(s.strip()) or "^" in s for s in shown)


def _shared_label(fig, ax, which: str) -> str:
    """The label that names ``which`` axis of ``ax``: its own, that of another panel in the same
    grid column (x) or row (y) of the same grid, or the figure's super-label."""
    own = ax.get_xlabel() if which == "x" else ax.get_ylabel()
    if own.strip():
        return own
    spec = ax.get_subplotspec()
    for other in fig.axes:
        other_spec = other.get_subplotspec()
        if other is ax or spec is None or other_spec is None or \
                other_spec.get_gridspec() is not spec.get_gridspec():
            continue
        same = other_spec.colspan == spec.colspan if which == "x" else other_spec.rowspan == spec.rowspan
        label = other.get_xlabel() if which == "x" else other.get_ylabel()
        if same and label.strip():
            return label
    sup = getattr(fig, f"_sup{which}label", None)
    return sup.get_text() if sup is not None else ""


def contract_violations(name: str, fig) -> list[str]:
    """Every breach of the axis contract in one Figure (drawn here, so its tick labels are set)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.draw_without_rendering()
    out = []
    for k, ax in enumerate(fig.axes):
        colorbar = getattr(ax, "_colorbar", None)
        if colorbar is not None:  # a colour bar: its long axis names the colour's quantity and unit
            label = colorbar.ax.get_ylabel() if colorbar.orientation == "vertical" else colorbar.ax.get_xlabel()
            if not UNIT.search(label):
                out.append(f"{name}: colour bar label {label!r} has no unit")
            continue
        if not ax.has_data():
            continue
        where = f"{name}: panel {k} ({ax.get_title() or 'untitled'})"
        for which, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            label = _shared_label(fig, ax, which)
            if not label.strip():
                out.append(f"{where}: no {which} label")
            elif _quantitative(axis) and not UNIT.search(label):
                out.append(f"{where}: {which} label {label!r} has no unit")
    return out


def _check_report(figures: dict, captions: list) -> None:
    assert figures, "the report drew no figure"
    for name, fig in figures.items():
        assert [ax for ax in fig.axes if ax.has_data()], f"{name}: no panel shows data"
    problems = [p for name, fig in figures.items() for p in contract_violations(name, fig)]
    assert not problems, "\n".join(problems)
    texts = [c for _, c in captions]
    repeated = {c for c in texts if texts.count(c) > 1}
    assert not repeated, [n for n, c in captions if c in repeated]
    assert all(c.strip() for c in texts), [n for n, c in captions if not c.strip()]


# ---------------------------------------------------------------- the contract itself can fail
def test_the_contract_flags_a_missing_label_a_missing_unit_and_a_repeated_caption():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.subplots()
    ax.plot([0, 1], [2, 3])
    ax.set_xlabel("soil temperature (°C)")
    assert contract_violations("f", fig) == ["f: panel 0 (untitled): no y label"]
    ax.set_ylabel("ln |CH₄ flux|")
    assert contract_violations("f", fig) == ["f: panel 0 (untitled): y label 'ln |CH₄ flux|' has no unit"]
    ax.set_ylabel("ln(|CH₄ flux| / nmol m⁻² s⁻¹)")
    assert contract_violations("f", fig) == []
    ax.set_yticks([2, 3], ["site A", "site B"])  # named rows need a label, not a unit
    ax.set_ylabel("site")
    assert contract_violations("f", fig) == []
    with pytest.raises(AssertionError, match="a"):
        _check_report({"a": fig, "b": fig}, [("a", "same words"), ("b", "same words")])


def test_a_grid_may_name_an_axis_once_per_column_and_row():
    from reports import layout

    fig, axes = layout.grid(2, 2, (2.0, 1.5))
    for ax in axes.flat:
        ax.plot([0, 1], [0, 1])
    for ax in axes[-1]:
        ax.set_xlabel("E (eV)")
    axes[0, 0].set_ylabel("density (eV⁻¹)")
    assert contract_violations("g", fig) == ["g: panel 2 (untitled): no y label", "g: panel 3 (untitled): no y label"]


# ---------------------------------------------------------------- every report kind
@pytest.fixture(scope="module")
def chamber_csv(tmp_path_factory):
    """The simulator's chamber sites (three flux classes, two seasons) as a chamber CSV."""
    from data.synthetic import simulate_observations

    table = simulate_observations(0)[0].table
    table = table[~table["method"].eq("eddy_covariance")]
    path = tmp_path_factory.mktemp("contract") / "chambers.csv"
    table.assign(flux_unit="nmol CH4 m-2 s-1", date=table["date"].dt.strftime("%Y-%m-%d")).to_csv(path, index=False)
    return path


def test_fit_ea_report_with_its_held_out_check(chamber_csv, tmp_path, monkeypatch):
    import tpflux

    mock_sampling(monkeypatch, energy=True)
    fit = tpflux.fit_ea(chamber_csv, chains=2, draws=40, ppc_draws=10, min_obs=10, seed=3, progress=False)
    folder = fit.save(tmp_path / "run")
    tpflux.crossvalidate_ea(folder, progress=False).save(folder / "crossvalidation")
    figures, captions = _build(monkeypatch, folder)
    assert {"temperature_response", "arrhenius", "crossvalidation_pit", "trace", "prior_predictive"} <= set(figures)
    _check_report(figures, captions)


def test_meta_analysis_report_with_its_optional_analyses(tmp_path, monkeypatch):
    from tpflux.meta import fit_rr

    mock_sampling(monkeypatch, energy=True)
    fit = fit_rr(EXAMPLES / "template_warming.csv", moderators="season,ecosystem", directions="pool",
                 small_study_test=True, leave_one_out=True, cumulative="year", tau_prior_sensitivity=True,
                 chains=2, draws=40, tune=5, seed=2, progress=False)
    figures, captions = _build(monkeypatch, fit.save(tmp_path / "run"))
    assert {"forest_rr", "funnel_rr", "leave1out_rr", "cumulative_rr", "prior_sensitivity_rr"} <= set(figures)
    _check_report(figures, captions)


def test_budget_report(tmp_path, monkeypatch):
    import tpflux
    from data.registry import dataset_folder
    from tests.shared_data import require_data

    require_data(dataset_folder, "jian2022")
    mock_sampling(monkeypatch, energy=True)
    result = tpflux.budget(variants=("weighted",), n_draws=2000, rf_trees=5, rf_records="annual", chains=2,
                           draws=40, tune=5, seed=1, progress=False)
    figures, captions = _build(monkeypatch, result.save(tmp_path / "run"))
    assert {"budget_consistency_weighted", "budget_rf_map", "trace"} <= set(figures)
    _check_report(figures, captions)


def test_season_comparison_report(chamber_csv, tmp_path, monkeypatch):
    from tpflux.seasons import compare_seasons

    mock_sampling(monkeypatch)
    result = compare_seasons(chamber_csv, schemes=("julian", "none"), residuals="ar1", chains=2, draws=40,
                             tune=10, seed=7, progress=False)
    figures, captions = _build(monkeypatch, result.save(tmp_path / "run"))
    assert "elpd_difference" in figures
    _check_report(figures, captions)


def _water_table_sites(seed):
    from data.synthetic import simulate_observations

    obs, _ = simulate_observations(seed, water_table=True, n_obs_target=2500,
                                   truth={"beta_E": {"wetland_emission": 0.8}})
    return obs


def test_covariate_fit_and_comparison_reports(tmp_path, monkeypatch):
    """A fit with a covariate reports β with units and its own table; the with/without comparison
    reports its ranking, effects and ΔELPD figure."""
    import tpflux

    mock_sampling(monkeypatch, energy=True)
    small = dict(chains=2, draws=40, tune=10, seed=7, progress=False)
    fit = tpflux.fit_ea(_water_table_sites(5), covariate="wtd_m", ppc_draws=5, **small)
    folder = fit.save(tmp_path / "fit")
    figures, captions = _build(monkeypatch, folder)
    assert (folder / "tables" / "covariate_effects.csv").exists()
    _check_report(figures, captions)

    cmp = tpflux.compare_covariate("wtd_m", _water_table_sites(6), **small)
    folder = cmp.save(tmp_path / "cmp")
    figures, captions = _build(monkeypatch, folder)
    assert "elpd_difference" in figures
    assert {"covariate_comparison.csv", "covariate_effects.csv"} <= {p.name for p in (folder / "tables").iterdir()}
    _check_report(figures, captions)
