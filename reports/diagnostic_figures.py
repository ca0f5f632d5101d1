"""MCMC and model-check figures of any saved run, drawn with ArviZ: rank, trace, energy, predictive checks.

Each function returns a matplotlib Figure (or None when the run lacks the group it needs); the
caller saves it. Importing this module leaves matplotlib's backend alone. ArviZ 1.x returns a
PlotCollection whose figure is ``pc.viz["figure"]``.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from models.summary import SAMPLE_DIMS
MAX_PANELS = 24


def _figure(pc) -> Figure:
    """The PlotCollection's figure, released from pyplot (ArviZ draws through it) so that it is
    returned like every other figure of the reports: not shown, not kept open."""
    import matplotlib.pyplot as plt

    fig = pc.viz["figure"].item()
    plt.close(fig)
    return fig


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


def rank_plot(tree: xr.DataTree, var_names) -> Figure:
    """Rank-ECDF plot per chain (Säilynoja et al. 2022): flat, overlapping curves = mixed chains."""
    import arviz as az

    post = tree["posterior"].to_dataset()
    rows = math.ceil(_panels(post, var_names) / 4)
    pc = az.plot_rank(tree, var_names=list(var_names),
                      figure_kwargs={"figsize": (14, 2.4 * rows), "layout": "constrained"})
    fig = _figure(pc)
    for ax in fig.axes:
        spec = ax.get_subplotspec()
        if spec is not None and spec.is_first_col() and not ax.get_ylabel():
            ax.set_ylabel("ECDF − uniform", fontsize=8)
    return fig


def trace_plot(tree: xr.DataTree, var_names) -> Figure:
    """Marginal densities (left) and traces (right) per chain."""
    import arviz as az

    pc = az.plot_trace_dist(tree, var_names=list(var_names),
                            figure_kwargs={"figsize": (13, 2.0 * len(var_names) + 0.5), "layout": "constrained"})
    return _figure(pc)


def energy_plot(tree: xr.DataTree) -> Figure | None:
    """Marginal vs transition energy and E-BFMI per chain (Betancourt 2016)."""
    import arviz as az

    if "sample_stats" not in tree.children or "energy" not in tree["sample_stats"]:
        return None
    pc = az.plot_energy(tree, figure_kwargs={"figsize": (11, 3.2), "layout": "constrained"})
    return _figure(pc)


def _split_by_cell(tree: xr.DataTree, group: str, var: str, cell_vars: tuple[str, ...]) -> xr.DataTree:
    """One variable per observation cell (e.g. flux class × season), so ArviZ draws one panel each."""
    pred = tree[group].to_dataset()[var]
    observed = tree["observed_data"].to_dataset()[var]
    cd = tree["constant_data"].to_dataset()
    keys = np.array([", ".join(str(cd[c].to_numpy()[i]) for c in cell_vars) for i in range(cd.sizes["obs"])])
    preds, obs = {}, {}
    for k, name in enumerate(dict.fromkeys(sorted(keys))):
        idx = np.flatnonzero(keys == name)
        dim = f"obs_{k}"
        preds[name] = pred.isel(obs=idx).rename(obs=dim).drop_vars(dim, errors="ignore")
        obs[name] = observed.isel(obs=idx).rename(obs=dim).drop_vars(dim, errors="ignore")
    return xr.DataTree.from_dict({group: xr.Dataset(preds), "observed_data": xr.Dataset(obs)})


def predictive_plot(tree: xr.DataTree, group: str = "posterior_predictive", var: str = "ln_flux",
                    cell_vars: tuple[str, ...] = ("obs_flux_class", "obs_season"),
                    num_samples: int = 50, show_observed: bool = True) -> Figure | None:
    """Density of replicated data (one line per draw) over the observed density, per cell.

    ``group`` is ``posterior_predictive`` (posterior predictive check) or ``prior_predictive``
    (prior predictive check: does the prior generate plausible data?). ArviZ leaves the observed
    density out of prior checks unless asked; ``show_observed`` asks.
    """
    import arviz as az

    if group not in tree.children or "observed_data" not in tree.children or var not in tree[group]:
        return None
    cd = tree["constant_data"] if "constant_data" in tree.children else {}
    if all(c in cd for c in cell_vars):
        work = _split_by_cell(tree, group, var, cell_vars)
        n = len(work[group].data_vars)
    else:
        work, n = tree, 1
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    n_draws = tree[group].sizes["chain"] * tree[group].sizes["draw"]
    pc = az.plot_ppc_dist(work, group=group, num_samples=min(num_samples, n_draws),
                          figure_kwargs={"figsize": (4.3 * cols, 2.8 * rows), "layout": "constrained"},
                          visuals={"observed_dist": {}} if show_observed else None, col_wrap=cols)
    return _figure(pc)
