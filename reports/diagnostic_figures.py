"""MCMC and model-check figures of any saved run: rank, trace, energy, predictive checks.

The numbers are ArviZ's (ranks, ECDFs, uniformity tests, kernel densities, E-BFMI from
arviz_stats); the figures are drawn here on matplotlib Figures of a fixed layout, each panel's
many lines as one collection: ArviZ's own plots draw line by line through pyplot and cost several
times as much. Each function returns a Figure (or None when the run lacks the group it needs),
not drawn, not registered with pyplot; the caller saves it. Importing this module leaves
matplotlib's backend alone.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from models.conventions import BFMI_LOW, CI_LABEL, CI_QUANTILES
from models.summary import SAMPLE_DIMS
from reports import layout
from reports.ea_figures import FLUX_UNIT

MAX_PANELS = 24
RANK_MARGINS = layout.Margins(left=0.4, right=0.2, top=0.3, bottom=0.5, wgap=0.35, hgap=0.35)
TRACE_MARGINS = layout.Margins(left=0.4, right=0.2, top=0.15, bottom=0.55, wgap=0.75, hgap=0.55)
CHAIN_STYLES = ("-", "--", ":", "-.")
ENERGY_MARGINS = layout.Margins(left=0.75, top=0.15, wgap=0.3)
# Replicated data sets drawn in a predictive check (one density line each).
PREDICTIVE_DRAWS = 50
# Every panel of a predictive check has its own axis labels (density or cumulative probability).
PREDICTIVE_MARGINS = layout.Margins(top=0.35, hgap=0.95, wgap=0.85)
# Observations in a cell below which a predictive check shows ECDFs (ArviZ's rule for "auto").
ECDF_BELOW = 100
DENSITY_LABEL, CDF_LABEL = "probability density", "cumulative probability"

FLUX_SCALE, BUDGET_UNIT = "ln flux", "Pg C yr⁻¹"
# Units of the sampled parameters the reports show, by name (fit_ea, fit_rr, budget); a name
# missing here is labelled without a unit, which the figure-contract test reports.
PARAMETER_UNITS = {
    "E": "eV", "E_site": "eV", "E_site_mean": "eV", "dE": "eV", "tau_E": "eV", "tau_E_class": "eV",
    "tau_R_class": FLUX_SCALE, "omega_E": "ln of a spread ratio", "omega_R": "ln of a spread ratio",
    "beta_E": "eV per covariate unit", "beta_R": "ln flux per covariate unit",
    "lnR": f"ln {FLUX_UNIT}", "tau_R": FLUX_SCALE, "sigma": FLUX_SCALE, "method_offset": FLUX_SCALE,
    "eps_R": FLUX_SCALE, "eps_E": "eV", "rho": "correlation at 1 d lag", "nu": "unitless",
    "lnRR": "unitless", "RR": "unitless", "lnRR_new": "unitless", "RR_new": "unitless", "z_new": "unitless",
    "tau": "lnRR", "tau_study": "lnRR", "tau_site": "lnRR", "I2": "unitless", "fitted": "lnRR",
    "beta": "lnRR per moderator unit", "exp_beta": "RR per moderator unit", "loglik_study": "nats",
    **{name: BUDGET_UNIT for name in ("mu_GPP", "mu_RS", "mu_NPP", "mu_fire", "sigma_GPP", "sigma_RS",
                                       "sigma_NPP", "sigma_fire", "tau_GPP_method", "tau_RS_method",
                                       "GPP_method_mean", "GPP_method_effect", "RS_method_effect",
                                       "herbivory", "sink", "DOC", "BVOC", "GPP_direct", "RS_direct",
                                       "GPP_implied", "RS_implied", "GPP_diff", "RS_diff")},
    "RC": "fraction", "Froot": "fraction", "RaGPP": "fraction", "nu_NPP": "unitless",
}
# Name prefixes of unit-free parameters: standardised (non-centred) draws, logits, concentrations.
UNITLESS_PREFIXES = {"z_": "standardised", "logit_": "logit", "kappa_": "unitless"}


def parameter_label(var: str) -> str:
    """``var (unit)`` for an axis showing a parameter's values (just ``var`` when its unit is unknown)."""
    unit = PARAMETER_UNITS.get(var) or next(
        (u for prefix, u in UNITLESS_PREFIXES.items() if var.startswith(prefix)), None)
    if unit is None and var.endswith("_group_mean"):
        unit = "fraction"
    return f"{var} ({unit})" if unit else var


def _panels(post: xr.Dataset, names) -> int:
    return sum(int(np.prod([n for d, n in post[v].sizes.items() if d not in SAMPLE_DIMS])) for v in names)


def default_var_names(tree: xr.DataTree, preferred=None, max_panels: int = MAX_PANELS) -> list[str]:
    """Sampled parameters to show: ``preferred`` where present, else the small ones, up to a panel budget."""
    post = tree["posterior"].to_dataset()
    candidates = [v for v in (preferred or post.data_vars) if v in post]
    names = []
    for v in candidates:
        if np.issubdtype(post[v].dtype, np.number) and _panels(post, names + [v]) <= max_panels:
            names.append(v)
    return names


def thinning_step(tree: xr.DataTree, max_draws: int | None) -> int:
    """Keep every k-th draw so that at most ``max_draws`` per chain remain (1: all of them)."""
    n = tree["posterior"].sizes["draw"]
    return 1 if not max_draws or n <= max_draws else math.ceil(n / max_draws)


def thinned(tree: xr.DataTree, var_names, step: int) -> xr.DataTree:
    """The posterior of ``var_names`` with every ``step``-th draw, and each kept draw flagged
    divergent when any of the ``step`` draws it stands for diverged (so no divergence is hidden)."""
    post = tree["posterior"].to_dataset()[list(var_names)]
    post = post.assign_coords({d: np.arange(post.sizes[d]) for d in SAMPLE_DIMS if d not in post.coords})
    groups = {"posterior": post.isel(draw=slice(None, None, step))}  # keeps the draws' own numbers
    stats = tree["sample_stats"].to_dataset() if "sample_stats" in tree.children else None
    if stats is not None and "diverging" in stats:
        div = stats["diverging"].transpose("chain", "draw").to_numpy().astype(bool)
        pad = -div.shape[1] % step
        blocks = np.pad(div, ((0, 0), (0, pad))).reshape(div.shape[0], -1, step).any(axis=-1)
        groups["sample_stats"] = xr.Dataset({"diverging": (("chain", "draw"), blocks)},
                                            coords=groups["posterior"][["chain", "draw"]].coords)
    return xr.DataTree.from_dict(groups)


def _elements(da: xr.DataArray) -> list[tuple[str, dict]]:
    """(label, selection) of every scalar of a variable, in coordinate order ("" for a scalar)."""
    dims = [d for d in da.dims if d not in SAMPLE_DIMS]
    values = [da[d].to_numpy() if d in da.coords else np.arange(da.sizes[d]) for d in dims]
    out = []
    for combo in itertools.product(*values):
        out.append((", ".join(str(v) for v in combo), dict(zip(dims, combo))))
    return out


def _steps(x: np.ndarray, y: np.ndarray, where: str) -> np.ndarray:
    """(rows, points, 2) step curves through (x, y) rows: each y holds from its x to the next x
    (``where="post"``, an ECDF) or from the previous x to its own (``"pre"``, as ArviZ draws ranks)."""
    xs, ys = np.repeat(x, 2, axis=-1), np.repeat(np.broadcast_to(y, np.shape(x)), 2, axis=-1)
    xs, ys = (xs[..., 1:], ys[..., :-1]) if where == "post" else (xs[..., :-1], ys[..., 1:])
    return np.stack([xs, ys], axis=-1)


def rank_plot(tree: xr.DataTree, var_names, max_draws: int | None = None) -> Figure:
    """Rank-ECDF plot per chain (Säilynoja et al. 2022): flat, overlapping curves = mixed chains.
    ``max_draws``: draws per chain to rank at most (the draws thinned evenly; None: all).

    The numbers are ArviZ's (``az.plot_rank``'s fractional ranks, ECDF differences and
    multi-chain uniformity test with its p-value and flagged points); the chains of a panel are
    drawn as one line collection.
    """
    import arviz_stats  # noqa: F401  (the .azstats accessor)
    from arviz_base import rcParams
    from matplotlib.collections import LineCollection

    post = thinned(tree, var_names, thinning_step(tree, max_draws))["posterior"].to_dataset()
    n = post.sizes["draw"]
    ranks = post.azstats.compute_ranks(dim=SAMPLE_DIMS, relative=True)
    ecdf = ranks.azstats.ecdf(dim=["draw"], pit=True, npoints=n)
    p_values, b_shapley, w_shapley = ranks.azstats.mchain_uniformity_test(dim=SAMPLE_DIMS)
    alpha = 1 - rcParams["stats.envelope_prob"]
    # ArviZ's y range: the Dvoretzky-Kiefer-Wolfowitz bound, padded, or the largest difference.
    epsilon = max(np.sqrt(np.log(2 / alpha) / (2 * n)) * 1.3,
                  max(float(np.abs(ecdf[v].sel(plot_axis="y")).max()) for v in var_names))
    panels = [(v, name, where) for v in var_names for name, where in _elements(post[v])]
    cols = min(4, len(panels))
    fig, axes = layout.grid(math.ceil(len(panels) / cols), cols, (2.75, 1.25), RANK_MARGINS, sharex=True)
    colours = [f"C{c % 10}" for c in range(post.sizes["chain"])]
    for ax in axes.flat[len(panels):]:
        ax.remove()
    for k, (ax, (var, name, where)) in enumerate(zip(axes.flat, panels)):
        curve = ecdf[var].sel(where).transpose("plot_axis", "chain", ...).to_numpy()
        ax.add_collection(LineCollection(_steps(curve[0], curve[1], "pre"), colors=colours, linewidths=1.0))
        flagged = ((b_shapley[var] > 0) & (w_shapley[var] > 0) & (p_values[var] < alpha)).sel(where)
        flagged = flagged.transpose("chain", ...).to_numpy()
        ax.scatter(curve[0][flagged], curve[1][flagged], s=8, color="k", zorder=3)
        ax.text(0.01, 0.97, f"p = {float(p_values[var].sel(where)):.2f} (α = {alpha:.2f})",
                transform=ax.transAxes, va="top", fontsize=7)
        ax.set_title(f"{var}[{name}]" if name else var, fontsize=8, y=1.0)
        ax.set_ylim(-epsilon, epsilon)
        ax.set_xlim(0, 1)
        ax.set_yticks([])
        ax.tick_params(labelsize=7)
        if k % cols == 0:
            ax.set_ylabel("ECDF − uniform\n(probability)", fontsize=8)
        if k + cols >= len(panels):  # the lowest panel of its column, whether or not the row is full
            ax.xaxis.set_tick_params(labelbottom=True)
            ax.set_xlabel("fractional rank (unitless)", fontsize=8)
    return fig


def trace_plot(tree: xr.DataTree, var_names, max_draws: int | None = None) -> Figure:
    """Marginal densities (left) and traces (right) per chain; ``max_draws`` as in ``rank_plot``.

    As in ``az.plot_trace_dist``: one colour per element of a variable, one line style per chain,
    densities by ArviZ's kernel density estimate, divergent draws marked below the traces. The
    lines of a panel are one collection.
    """
    from arviz_stats.base import array_stats
    from matplotlib.collections import LineCollection

    work = thinned(tree, var_names, thinning_step(tree, max_draws))
    post = work["posterior"].to_dataset()
    draws = post["draw"].to_numpy()
    chains = post.sizes["chain"]
    styles = [CHAIN_STYLES[c % len(CHAIN_STYLES)] for c in range(chains)]
    divergent = (work["sample_stats"]["diverging"].transpose(*SAMPLE_DIMS).to_numpy()
                 if "sample_stats" in work.children else np.zeros((chains, draws.size), bool))
    elements = {var: [name for name, _ in _elements(post[var])] for var in var_names}
    # Past ten elements the colours repeat: such a parameter gets a count, not a legend.
    keyed = {var: names for var, names in elements.items() if any(names) and len(names) <= 10}
    cycled = [f"{len(names)} elements" for var, names in elements.items() if var not in keyed and len(names) > 1]
    named = [name for names in keyed.values() for name in names] + cycled + ["(colours cycle)"] * bool(cycled)
    # The element legend (or count) of each row sits right of its traces.
    margins = dataclasses.replace(TRACE_MARGINS, right=TRACE_MARGINS.right
                                  + (layout.text_width(named, 7) + 0.45 if named else 0.0))
    fig, axes = layout.grid(len(var_names), 2, (5.4, 1.35), margins)
    for (left, right), var in zip(axes, var_names):
        values = post[var].transpose(*SAMPLE_DIMS, ...).to_numpy().reshape(chains, draws.size, -1)
        values = np.moveaxis(values, -1, 0)  # (element, chain, draw)
        colours = [f"C{k % 10}" for k in range(values.shape[0]) for _ in range(chains)]
        lines = styles * values.shape[0]
        grid, pdf, _ = array_stats.kde(values, axis=-1)
        left.add_collection(LineCollection(np.stack([grid, pdf], -1).reshape(-1, grid.shape[-1], 2),
                                           colors=colours, linestyles=lines, linewidths=1.0))
        traces = np.stack([np.broadcast_to(draws, values.shape), values], -1).reshape(-1, draws.size, 2)
        right.add_collection(LineCollection(traces, colors=colours, linestyles=lines, linewidths=0.6))
        for ax in (left, right):
            ax.autoscale_view()
            ax.tick_params(labelsize=8)
        if divergent.any():
            low = right.get_ylim()[0]
            right.plot(draws[divergent.any(axis=0)], np.full(int(divergent.any(axis=0).sum()), low), "|",
                       color="k", ms=6)
        left.set_yticks([])
        left.set_xlabel(parameter_label(var), fontsize=9)
        left.set_ylabel(DENSITY_LABEL, fontsize=8)
        right.set_ylabel(parameter_label(var).replace(" (", "\n(", 1), fontsize=8)
        right.set_xlim(draws[0], draws[-1])
        if var in keyed:
            right.legend(handles=[Line2D([], [], color=f"C{k}", label=name) for k, name in enumerate(keyed[var])],
                         loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=7, frameon=False,
                         handlelength=1.2, borderaxespad=0.0)
        elif len(elements[var]) > 1:
            right.text(1.02, 0.5, f"{len(elements[var])} elements\n(colours cycle)", transform=right.transAxes,
                       fontsize=7, va="center")
    axes[-1, 1].set_xlabel("draw (iteration)", fontsize=9)
    return fig


def energy_plot(tree: xr.DataTree) -> Figure | None:
    """Marginal vs transition energy and E-BFMI per chain (Betancourt 2016), as ``az.plot_energy``
    computes them: the energy centred on its mean and its change between successive draws, pooled
    over chains; E-BFMI by ArviZ."""
    import arviz_stats  # noqa: F401  (the .azstats accessor)
    from arviz_stats.base import array_stats

    if "sample_stats" not in tree.children or "energy" not in tree["sample_stats"]:
        return None
    energy = tree["sample_stats"]["energy"].transpose(*SAMPLE_DIMS)
    bfmi = energy.azstats.bfmi(sample_dims=SAMPLE_DIMS).to_numpy()
    values = energy.to_numpy()
    curves = {"marginal": (values - values.mean()).ravel(), "transition": np.diff(values, axis=1).ravel()}
    fig, axes = layout.grid(1, 2, ([2.2, 6.4], 2.3), ENERGY_MARGINS)
    left, right = axes[0]
    left.plot(bfmi, np.arange(bfmi.size), "o", color="k")
    left.axvline(BFMI_LOW, color="0.4", ls="--", lw=1, label=f"E-BFMI = {BFMI_LOW}")
    left.set_yticks(np.arange(bfmi.size), [str(c) for c in energy["chain"].to_numpy()])
    left.set_xlim(0, max(1.05, float(np.nanmax(bfmi)) * 1.05))
    left.set_xlabel("E-BFMI (unitless)", fontsize=9)
    left.set_ylabel("chain (index)", fontsize=9)
    left.legend(fontsize=7, frameon=False, loc="upper left")
    for k, (name, v) in enumerate(curves.items()):
        grid, pdf, _ = array_stats.kde(v[np.isfinite(v)])
        right.fill_between(grid, pdf, color=f"C{k}", alpha=0.35, lw=0)
        right.plot(grid, pdf, color=f"C{k}", lw=1.2, label=name)
    right.set_yticks([])
    right.set_xlabel("Hamiltonian energy (nats): centred on its mean (marginal), change between draws "
                     "(transition)", fontsize=9)
    right.set_ylabel(DENSITY_LABEL, fontsize=9)
    right.legend(fontsize=8, frameon=False)
    for ax in (left, right):
        ax.tick_params(labelsize=8)
    return fig


def _predictive_draws(tree: xr.DataTree, group: str, var: str, num_samples: int) -> np.ndarray:
    """(draws, observations): ``num_samples`` replicated data sets, evenly spaced over chains × draws."""
    pred = tree[group].to_dataset()[var].transpose(*SAMPLE_DIMS, ...)
    n = pred.sizes["chain"] * pred.sizes["draw"]
    keep = np.unique(np.linspace(0, n - 1, min(num_samples, n)).round().astype(int))
    return pred.to_numpy().reshape(n, -1)[keep]


def _cells(cd: xr.Dataset, cell_vars: tuple[str, ...], n_obs: int) -> dict[str, np.ndarray]:
    """Observation indices per cell (e.g. "wetland_emission, growing"), sorted by label; a single
    cell of every observation when the run lacks the cell variables."""
    if not cell_vars or not all(c in cd for c in cell_vars):
        return {"": np.arange(n_obs)}
    parts = [cd[c].to_numpy().astype(str) for c in cell_vars]
    keys = parts[0]
    for part in parts[1:]:
        keys = np.char.add(np.char.add(keys, ", "), part)
    return {str(name): np.flatnonzero(keys == name) for name in np.unique(keys)}


def _ecdf_steps(values: np.ndarray) -> np.ndarray:
    """(rows, points, 2) step curves of the empirical CDF of each row."""
    n = values.shape[-1]
    return _steps(np.sort(values, axis=-1), np.arange(1, n + 1) / n, "post")


def _densities(values: np.ndarray) -> np.ndarray:
    """(rows, grid, 2) kernel density curves of each row (ArviZ's estimate), each row with its own
    Silverman bandwidth: a rule in closed form, where ArviZ's default solves an equation per row."""
    from arviz_stats.base import array_stats

    grid, pdf, _ = array_stats.kde(values, axis=-1, bw="silverman")
    return np.stack([grid, pdf], axis=-1)


def _ecdf_band(pred: np.ndarray, obs: np.ndarray, n_grid: int = 200):
    """(grid, low, median, high): pointwise interval and median over the replicated data sets
    (rows of ``pred``) of their empirical CDFs, on a grid spanning the observed and the central
    99 % of the replicated values (a prior's far tails would flatten the rest)."""
    lo, hi = np.quantile(pred, [0.005, 0.995])
    grid = np.linspace(min(lo, obs.min()), max(hi, obs.max()), n_grid)
    ranked = np.sort(pred, axis=-1)
    cdf = np.stack([np.searchsorted(row, grid, side="right") for row in ranked]) / ranked.shape[-1]
    return (grid, *np.quantile(cdf, CI_QUANTILES, axis=0))


def predictive_plot(tree: xr.DataTree, group: str = "posterior_predictive", var: str = "ln_flux",
                    cell_vars: tuple[str, ...] = ("obs_flux_class", "obs_season"),
                    num_samples: int = PREDICTIVE_DRAWS, show_observed: bool = True,
                    xlabel: str | None = None, band: bool = False) -> Figure | None:
    """Density of replicated data (one line per draw) over the observed density, per cell.

    ``group`` is ``posterior_predictive`` (posterior predictive check) or ``prior_predictive``
    (prior predictive check: does the prior generate plausible data?). As in ArviZ's
    ``plot_ppc_dist``, a cell with fewer than ``ECDF_BELOW`` observations shows empirical CDFs
    instead of densities; observed and replicated densities are estimated alike (``_densities``).
    The lines of a panel are one collection: fifty draws cost one artist, not fifty.
    ``band``: one clear check instead of one line per draw, the pointwise interval of the
    replicated ECDFs with the observed ECDF over it (for a prior predictive check, whose draws
    scatter too widely for overlaid densities to read).
    """
    if group not in tree.children or "observed_data" not in tree.children or var not in tree[group]:
        return None
    pred = _predictive_draws(tree, group, var, num_samples)
    observed = tree["observed_data"].to_dataset()[var].to_numpy().ravel()
    cd = tree["constant_data"].to_dataset() if "constant_data" in tree.children else xr.Dataset()
    cells = _cells(cd, cell_vars, observed.size)
    cols = min(len(cells), 3)
    rows = math.ceil(len(cells) / cols)
    fig, axes = layout.grid(rows, cols, (3.3, 1.85), PREDICTIVE_MARGINS)
    for ax in axes.flat[len(cells):]:
        ax.remove()
    for k, (ax, (name, idx)) in enumerate(zip(axes.flat, cells.items())):
        obs = observed[idx]
        if band:
            _band_panel(ax, pred[:, idx], obs)
        else:
            _draws_panel(ax, pred[:, idx], obs, show_observed)
        ax.set_title(f"{name.replace('_', ' ')} (n = {idx.size})" if name else f"n = {idx.size}", fontsize=10)
        ax.set_xlabel(xlabel or var, fontsize=9)
        ax.tick_params(labelsize=8)
        if k == 0:  # over a band, a framed legend stays readable
            ax.legend(fontsize=7, frameon=band, framealpha=0.9, loc="lower right" if band else "upper left")
    return fig


def _band_panel(ax, pred: np.ndarray, obs: np.ndarray) -> None:
    """The replicated ECDFs as one band (interval) and median line, the observed ECDF over it."""
    grid, lo, mid, hi = _ecdf_band(pred, obs)
    ax.fill_between(grid, lo, hi, color="C0", alpha=0.3, lw=0,
                    label=f"{CI_LABEL} of {len(pred)} replicated ECDFs")
    ax.plot(grid, mid, color="C0", lw=1.0, label="median replicated ECDF")
    obs_curve = _ecdf_steps(obs[None])[0]
    ax.plot(obs_curve[:, 0], obs_curve[:, 1], color="k", lw=1.4, label="observed")
    ax.set_xlim(grid[0], grid[-1])
    ax.set_ylim(0, 1)
    ax.set_ylabel(CDF_LABEL, fontsize=9)


def _draws_panel(ax, pred: np.ndarray, obs: np.ndarray, show_observed: bool) -> None:
    """One density (or ECDF, for a small cell) per replicated data set, the observed one over them."""
    from matplotlib.collections import LineCollection

    curve, ylabel = (_ecdf_steps, CDF_LABEL) if obs.size < ECDF_BELOW else (_densities, DENSITY_LABEL)
    curves, obs_curve = curve(pred), curve(obs[None])[0]
    ax.add_collection(LineCollection(curves, colors="C0", alpha=0.3, linewidths=0.8,
                                     label=f"replicated ({len(curves)} draws)"))
    if show_observed:
        ax.plot(obs_curve[:, 0], obs_curve[:, 1], color="k", lw=1.4, label="observed")
    ax.autoscale_view()
    ax.set_ylabel(ylabel, fontsize=9)
