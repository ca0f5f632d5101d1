"""Figures of an activation-energy (fit_ea) run, drawn from its saved DataTree.

Each function returns a matplotlib Figure, neither drawn nor saved (the caller saves it; importing
this module leaves matplotlib's backend alone). Curves and bands are pointwise
posterior medians and intervals of the project's single convention (``models.conventions``).
The population curve of a flux class × season is drawn for the measurement method most of its
observations use (its method offset added), so that it lies over the data it summarises.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib import colormaps
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from data.constants import KELVIN, T_REF_C, arrhenius_x, celsius_from_inverse_kt, inverse_kt
from models import conventions
from models.arrhenius_config import group_parts
from reports import layout
from reports.tables import SAMPLE_DIMS, ci_percent, label, reference_season

FLUX_UNIT = "nmol m⁻² s⁻¹"
# The log-scale flux axis: the logarithm of a flux taken in FLUX_UNIT (|F|: uptake is negative).
LN_FLUX_LABEL = f"ln(|CH₄ flux| / {FLUX_UNIT})"
SEASON_COLOURS = colormaps["tab10"].colors


def observations(tree: xr.DataTree) -> pd.DataFrame:
    """The fitted observations (one row each) from ``constant_data``; ``group`` is the label of
    the observation's site × class × season group (from its group number where the run saved
    one)."""
    cd = tree["constant_data"].to_dataset()
    obs = pd.DataFrame({"site": cd["site"].to_numpy().astype(str),
                        "flux_class": cd["obs_flux_class"].to_numpy().astype(str),
                        "season": cd["obs_season"].to_numpy().astype(str),
                        "soil_temp_c": cd["soil_temp_c"].to_numpy(), "flux": cd["flux"].to_numpy()})
    obs["method"] = cd["method"].to_numpy().astype(str) if "method" in cd else ""
    obs["group"] = _group_of_observations(tree, obs, cd)
    return obs


def _group_of_observations(tree: xr.DataTree, obs: pd.DataFrame, cd: xr.Dataset) -> np.ndarray:
    """Each observation's group label, joined on (site, class, season) as separate keys."""
    post = tree["posterior"].to_dataset() if "posterior" in tree.children else None
    if post is None or "group" not in post.coords:
        return np.full(len(obs), "", dtype=object)
    labels = np.asarray(post["group"].values).astype(str)
    if "obs_group" in cd:
        index = np.asarray(cd["obs_group"].values)
        if index.size and index.min() >= 0 and index.max() < labels.size:
            return labels[index]
    parts = group_parts(post, tree).reset_index()
    joined = obs[["site", "flux_class", "season"]].merge(parts, how="left",
                                                         on=["site", "flux_class", "season"])
    return joined["group"].fillna("").to_numpy(dtype=object)


def t_ref_c(tree: xr.DataTree) -> float:
    config = json.loads(tree.attrs.get("tpflux_config", "{}"))
    return float(config.get("t_ref_c", T_REF_C))


def _offset(post: xr.Dataset, method: str) -> np.ndarray:
    """Draws of the lnR offset of ``method`` (zero for the reference method)."""
    if "method_offset" in post and method in post["method"].to_numpy():
        return post["method_offset"].sel({"method": method}).transpose(*SAMPLE_DIMS).to_numpy().ravel()
    return np.zeros(post.sizes["chain"] * post.sizes["draw"])


def _draws(post: xr.Dataset, name: str, **sel) -> np.ndarray:
    return post[name].sel(sel).transpose(*SAMPLE_DIMS).to_numpy().ravel()


def _mode(values: pd.Series) -> str:
    return values.mode().iloc[0] if len(values) else ""


def _band(curves: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lo, mid, hi = np.quantile(curves, conventions.CI_QUANTILES, axis=0)
    return lo, mid, hi


def population_curve(post: xr.Dataset, obs: pd.DataFrame, flux_class: str, season: str,
                     temps: np.ndarray, t_ref: float, log: bool = False):
    """Pointwise (low, median, high) of sign·exp(lnR + δ + E·x(T)) (or of lnR + δ + E·x if ``log``)."""
    cell = obs[(obs["flux_class"] == flux_class) & (obs["season"] == season)]
    sign = 1.0 if np.median(cell["flux"]) >= 0 else -1.0
    ln_r = _draws(post, "lnR", flux_class=flux_class, season=season) + _offset(post, _mode(cell["method"]))
    e = _draws(post, "E", flux_class=flux_class, season=season)
    ln_f = ln_r[:, None] + e[:, None] * arrhenius_x(temps, t_ref)[None, :]
    return _band(ln_f if log else sign * np.exp(ln_f))


# Room of the class × season grids; the Arrhenius plot adds a temperature axis above each panel.
GRID_MARGINS = layout.Margins()
TOP_AXIS_MARGINS = dataclasses.replace(GRID_MARGINS, top=GRID_MARGINS.top + 0.45, hgap=GRID_MARGINS.hgap + 0.3)
# The site legend under the Arrhenius plot: columns, and the height of a row in inches.
SITE_LEGEND_COLUMNS = 5
SITE_LEGEND_ROW = 0.2
SITE_STYLES = ("-", "--", ":")


def _grid(post: xr.Dataset, title: str, margins: layout.Margins = GRID_MARGINS):
    classes = [str(c) for c in post["flux_class"].to_numpy()]
    seasons = [str(s) for s in post["season"].to_numpy()]
    fig, axes = layout.grid(len(classes), len(seasons), (3.45, 2.45), margins, title=title)
    return fig, axes, classes, seasons


# Points above a panel taken by a top axis: its tick labels, and in the first row its label too.
TOP_AXIS_PAD = (36.0, 22.0)


def _cells(axes, classes, seasons, obs: pd.DataFrame, top_axis: bool = False):
    """Each class × season panel with its observations (the count in its title); empty panels are
    labelled and skipped. The titles sit at a fixed height (clear of a ``top_axis``): letting
    matplotlib place them around the top ticks costs as much as drawing the ticks."""
    for i, cls in enumerate(classes):
        for j, season in enumerate(seasons):
            ax = axes[i, j]
            cell = obs[(obs["flux_class"] == cls) & (obs["season"] == season)]
            pad = TOP_AXIS_PAD[i > 0] if top_axis else None
            ax.set_title(f"{label(cls)} · {label(season)} (n = {len(cell)})", fontsize=10, y=1.0, pad=pad)
            if cell.empty:
                ax.text(0.5, 0.5, "no observations", ha="center", va="center", transform=ax.transAxes)
                continue
            yield i, j, ax, cls, season, cell


def _title(tree: xr.DataTree, text: str) -> str:
    config = json.loads(tree.attrs.get("tpflux_config", "{}"))
    return text + ("  [SYNTHETIC DATA]" if config.get("synthetic") else "")


def temperature_response(tree: xr.DataTree, n_grid: int = 80) -> Figure:
    """Soil temperature vs CH4 flux per flux class × season: data, posterior median curve and band."""
    post, obs, t_ref = tree["posterior"].to_dataset(), observations(tree), t_ref_c(tree)
    title = _title(tree, f"CH₄ flux vs soil temperature: posterior median curve and {conventions.CI_LABEL}")
    fig, axes, classes, seasons = _grid(post, title)
    legend = None
    for i, j, ax, cls, season, cell in _cells(axes, classes, seasons, obs):
        temps = np.linspace(cell["soil_temp_c"].min(), cell["soil_temp_c"].max(), n_grid)
        lo, mid, hi = population_curve(post, obs, cls, season, temps, t_ref)
        ax.scatter(cell["soil_temp_c"], cell["flux"], s=4, color="0.55", alpha=0.35, lw=0,
                   rasterized=True, label="observations")
        ax.fill_between(temps, lo, hi, color=SEASON_COLOURS[j], alpha=0.3, lw=0,
                        label=f"{ci_percent()} interval")
        ax.plot(temps, mid, color=SEASON_COLOURS[j], lw=2, label="posterior median")
        ylo, yhi = np.quantile(cell["flux"], [0.005, 0.995])
        ylo, yhi = min(ylo, lo.min(), 0.0), max(yhi, hi.max(), 0.0)
        pad = 0.05 * (yhi - ylo or 1.0)
        ax.set_ylim(ylo - pad, yhi + pad)
        ax.axhline(0, color="0.3", lw=0.6)
        if not legend:  # the same entries in every panel: shown once
            legend = ax.legend(fontsize=7, loc="upper left" if mid[-1] >= 0 else "lower left", frameon=False)
        if i == len(classes) - 1:
            ax.set_xlabel("soil temperature (°C)")
        if j == 0:
            ax.set_ylabel(f"CH₄ flux ({FLUX_UNIT})")
    return fig


def _celsius_from_inverse_kt(v):
    with np.errstate(divide="ignore"):
        return celsius_from_inverse_kt(v)


def site_lines(post: xr.Dataset, obs: pd.DataFrame, t_ref: float, n_grid: int = 20) -> dict[tuple, tuple]:
    """Per site group, keyed (site, flux_class, season): (temperatures, pointwise median of
    a_g + b_g·x) over the group's data range."""
    if "eps_R" not in post or "E_site" not in post:
        return {}
    parts = group_parts(post)
    cells = obs[obs["group"].isin(parts.index)].groupby("group")
    ranges = cells["soil_temp_c"].agg(["min", "max"])
    parts = parts.loc[ranges.index]
    methods = cells["method"].agg(_mode)
    if parts.empty:
        return {}
    # Every group's intercept and slope draws at once (pointwise selection), as (draws, group).
    group = xr.DataArray(parts.index.to_numpy(), dims="group")
    ln_r = post["lnR"].sel(flux_class=xr.DataArray(parts["flux_class"].to_numpy(), dims="group"),
                           season=xr.DataArray(parts["season"].to_numpy(), dims="group"))
    a = _by_group(ln_r.drop_vars(["flux_class", "season"]) + post["eps_R"].sel(group=group))
    a = a + np.stack([_offset(post, m) for m in methods.loc[parts.index]], axis=1)
    b = _by_group(post["E_site"].sel(group=group))
    out = {}
    for k, (g, (site, cls, season)) in enumerate(parts[["site", "flux_class", "season"]].iterrows()):
        temps = np.linspace(ranges.at[g, "min"], ranges.at[g, "max"], n_grid)
        out[site, cls, season] = (temps, np.median(a[:, k, None] + b[:, k, None]
                                                   * arrhenius_x(temps, t_ref)[None, :], axis=0))
    return out


def _by_group(da: xr.DataArray) -> np.ndarray:
    """(chain × draw, group) array of a per-group quantity."""
    return da.transpose(*SAMPLE_DIMS, "group").to_numpy().reshape(-1, da.sizes["group"])


def arrhenius_plot(tree: xr.DataTree) -> Figure:
    """ln|F| vs 1/kT per flux class × season, with one line per site and the class × season line."""
    post, obs, t_ref = tree["posterior"].to_dataset(), observations(tree), t_ref_c(tree)
    obs = obs[obs["flux"] != 0].assign(ln_abs=lambda d: np.log(np.abs(d["flux"])),
                                       inv_kt=lambda d: inverse_kt(d["soil_temp_c"]))
    lines = site_lines(post, obs, t_ref)
    title = _title(tree, "Arrhenius plot: ln|F| vs 1/kT, site lines (colour) and class × season line "
                         "(black; slope −E)")
    sites = sorted(obs["site"].unique())
    legend_rows = math.ceil(len(sites) / SITE_LEGEND_COLUMNS)
    margins = dataclasses.replace(TOP_AXIS_MARGINS,
                                  bottom=TOP_AXIS_MARGINS.bottom + SITE_LEGEND_ROW * (legend_rows + 1))
    fig, axes, classes, seasons = _grid(post, title, margins)
    cmap = colormaps["tab20"]
    # Past 20 sites the colours repeat: the line style then tells the sites apart.
    colour = {s: cmap(k % 20) for k, s in enumerate(sites)}
    style = {s: SITE_STYLES[(k // 20) % len(SITE_STYLES)] for k, s in enumerate(sites)}
    legend = None
    for i, j, ax, cls, season, cell in _cells(axes, classes, seasons, obs, top_axis=True):
        # One collection per panel (one raster image in the PDF), the sites told apart by colour.
        ax.scatter(cell["inv_kt"], cell["ln_abs"], s=3, c=[colour[s] for s in cell["site"]], alpha=0.3,
                   lw=0, rasterized=True)
        for site in sorted(cell["site"].unique()):
            if (site, cls, season) in lines:
                temps, ln_f = lines[site, cls, season]
                ax.plot(inverse_kt(temps), ln_f, color=colour[site], ls=style[site], lw=1.2)
        temps = np.linspace(cell["soil_temp_c"].min(), cell["soil_temp_c"].max(), 40)
        lo, mid, hi = population_curve(post, obs, cls, season, temps, t_ref, log=True)
        ax.fill_between(inverse_kt(temps), lo, hi, color="k", alpha=0.2, lw=0,
                        label=f"class × season, {ci_percent()} interval")
        ax.plot(inverse_kt(temps), mid, color="k", lw=2.2, label="class × season median")
        if not legend:  # the same entries in every panel: shown once
            legend = ax.legend(fontsize=7, frameon=False, loc="lower left")
        top = ax.secondary_xaxis("top", functions=(_celsius_from_inverse_kt, inverse_kt_safe))
        top.xaxis.set_major_locator(layout.locator())
        if i == 0:
            top.set_xlabel("soil temperature (°C)", fontsize=8)
        top.tick_params(labelsize=7)
        if i == len(classes) - 1:
            ax.set_xlabel("1/kT (eV⁻¹)")
        if j == 0:
            ax.set_ylabel(LN_FLUX_LABEL)
    handles = [Line2D([], [], color=colour[s], ls=style[s], lw=1.5, marker="o", ms=3, label=s) for s in sites]
    fig.legend(handles=handles, title="site (points: observations; lines: posterior median of the site)",
               loc="lower center", bbox_to_anchor=(0.5, 0.1 / fig.get_figheight()),
               ncol=min(SITE_LEGEND_COLUMNS, len(sites)), fontsize=7, title_fontsize=8, frameon=False)
    return fig


def inverse_kt_safe(temp_c):
    """1/(k·T) of an axis value, missing at or below absolute zero (for the secondary axis)."""
    temp_c = np.asarray(temp_c, dtype=float)
    return inverse_kt(np.where(temp_c > -KELVIN, temp_c, np.nan))


def activation_energy_forest(site_frame: pd.DataFrame, pooled_frame: pd.DataFrame,
                             synthetic: bool = False) -> Figure:
    """Forest plot of E per site × season and the class × season (pooled) E, from the tables.

    ``site_frame``: rows of the site table (site, flux_class, season, median, ci_low, ci_high);
    ``pooled_frame``: rows of quantity E (flux_class, season, median, ci_low, ci_high).
    Drawing from the table frames makes the figure show exactly the tabled numbers.
    """
    classes = sorted(set(pooled_frame["flux_class"]) | set(site_frame["flux_class"]))
    seasons = list(dict.fromkeys(pooled_frame["season"]))
    heights = []
    for cls in classes:
        n_sites = site_frame[site_frame["flux_class"] == cls].groupby("season").size()
        heights.append(sum(int(n_sites.get(s, 0)) + 2 for s in seasons))
    row_labels = [*site_frame["site"].astype(str), *(f"pooled E, {label(s)}" for s in seasons)]
    margins = layout.Margins(left=layout.text_width(row_labels, 7) + 0.5, right=0.25,
                             top=0.55 + 0.2 * synthetic, bottom=0.6, hgap=0.45)
    title = ("E per site × season (points) and pooled class × season E (diamonds)"
             + ("\n[SYNTHETIC DATA]" if synthetic else ""))
    fig, axes = layout.grid(len(classes), 1, (5.8, [0.22 * h for h in heights]), margins, title=title,
                            sharex=True)
    for ax, cls in zip(axes[:, 0], classes):
        y, ticks, names = 0.0, [], []
        for k, season in enumerate(seasons):
            colour = SEASON_COLOURS[k % 10]
            rows = site_frame[(site_frame["flux_class"] == cls) & (site_frame["season"] == season)]
            rows = rows.sort_values("site")
            ys = y - np.arange(len(rows))
            # The intervals of a season as one collection, the medians as one line of markers.
            ax.add_collection(LineCollection(np.stack([np.stack([rows["ci_low"], ys], -1),
                                                       np.stack([rows["ci_high"], ys], -1)], 1),
                                             colors=colour, linewidths=1.2))
            ax.plot(rows["median"], ys, "o", color=colour, ms=4, ls="none")
            ticks += list(ys)
            names += list(rows["site"].astype(str))
            y -= len(rows)
            pooled = pooled_frame[(pooled_frame["flux_class"] == cls) & (pooled_frame["season"] == season)]
            for r in pooled.itertuples():
                ax.fill([r.ci_low, r.median, r.ci_high, r.median], [y, y + 0.35, y, y - 0.35],
                        color=colour, alpha=0.9)
                ticks.append(y)
                names.append(f"pooled E, {label(season)}")
                y -= 2
        ax.set_yticks(ticks, names, fontsize=7)
        ax.set_ylabel("site × season", fontsize=8)
        ax.set_ylim(y + 1, 1)
        ax.set_title(label(cls), fontsize=10, loc="left", y=1.0)
        ax.axvline(0, color="0.6", lw=0.6, ls=":")
        ax.grid(axis="x", color="0.9")
        ax.autoscale_view(scaley=False)
    axes[-1, 0].set_xlabel(f"activation energy E (eV): median and {ci_percent()} interval")
    handles = [Line2D([], [], color=SEASON_COLOURS[k % 10], marker="o", label=label(s))
               for k, s in enumerate(seasons)]
    # Above the first panel, right of its title: inside, "best" would search every point for room.
    axes[0, 0].legend(handles=handles, fontsize=7, frameon=False, loc="lower right", bbox_to_anchor=(1, 1),
                      ncol=len(seasons), borderaxespad=0.2)
    return fig


def season_difference(tree: xr.DataTree, table: pd.DataFrame | None = None) -> Figure | None:
    """Posterior density of ΔE per flux class with its interval and P(ΔE > 0)."""
    from scipy.stats import gaussian_kde

    post = tree["posterior"].to_dataset()
    if "dE" not in post:
        return None
    d_e = post["dE"]
    cells = [(str(c), str(s)) for c in d_e["flux_class"].to_numpy() for s in d_e["season"].to_numpy()
             if bool(d_e.sel(flux_class=c, season=s).notnull().any())]
    if not cells:
        return None
    title = _title(tree, f"ΔE = E(season) − E({reference_season(post)}): posterior density")
    fig, axes = layout.grid(1, len(cells), (2.95, 1.95), layout.Margins(left=0.4, wgap=0.45), title=title)
    for ax, (cls, season) in zip(axes[0], cells):
        draws = _draws(post, "dE", flux_class=cls, season=season)
        draws = draws[np.isfinite(draws)]
        lo, mid, hi = np.quantile(draws, conventions.CI_QUANTILES)
        grid = np.linspace(draws.min(), draws.max(), 300)
        dens = gaussian_kde(draws)(grid) if np.ptp(draws) > 0 else np.zeros_like(grid)
        ax.plot(grid, dens, color="C0")
        inside = (grid >= lo) & (grid <= hi)
        ax.fill_between(grid[inside], dens[inside], color="C0", alpha=0.3,
                        label=f"{ci_percent()} interval")
        ax.axvline(mid, color="C0", lw=1.2, label="median")
        ax.axvline(0, color="k", ls="--", lw=0.8)
        p = float(np.mean(draws > 0))
        ax.text(0.97, 0.95, f"P(ΔE > 0) = {p:.3f}", ha="right", va="top", transform=ax.transAxes, fontsize=8)
        ax.set_title(f"{label(cls)}: {label(season)}", fontsize=10)
        ax.set_xlabel("ΔE (eV)")
        ax.set_ylabel("posterior density (eV⁻¹)")
        ax.set_ylim(0, dens.max() * 1.45 or 1.0)  # headroom: the legend and P(ΔE > 0) sit above the curve
        ax.set_yticks([])
        ax.legend(fontsize=7, frameon=False, loc="upper left")
    return fig
