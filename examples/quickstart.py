# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # tpflux quickstart: activation energies of CH4 flux
#
# From the default real data to the numbers to cite, in six steps:
#
# 1. load the observations and see what they hold;
# 2. fit the hierarchical Boltzmann–Arrhenius model (`tpflux.fit_ea`);
# 3. check the convergence diagnostics;
# 4. plot the temperature response;
# 5. save the run folder and load it back;
# 6. print the activation energies E (eV) with 95 % equal-tailed intervals.
#
# Open this file as a notebook (`jupytext --to notebook examples/quickstart.py`, or directly in
# JupyterLab with jupytext installed) or run it as a script:
#
# ```bash
# python examples/quickstart.py
# ```
#
# Settings come from environment variables, with the defaults of a full analysis:
#
# | variable | default | what |
# |---|---|---|
# | `TPFLUX_QUICKSTART_DATASET` | `ch4-sites` | dataset name (`synthetic` for the simulator, offline) |
# | `TPFLUX_QUICKSTART_CHAINS` | `4` | NUTS chains |
# | `TPFLUX_QUICKSTART_DRAWS` | `1000` | draws per chain |
# | `TPFLUX_QUICKSTART_TUNE` | `1000` | tuning steps per chain |
# | `TPFLUX_QUICKSTART_SEED` | `5` | random seed (same seed, same result) |
# | `TPFLUX_QUICKSTART_OUT` | `quickstart-run` | output folder, under the current directory |
#
# The output folder holds `run/` (the saved run, as `python -m inference.fit_ea --out` writes it)
# and `figures/` (PNG files). Running the quickstart again replaces both (the run only through
# `overwrite=True`, below).

# %%
import os
from pathlib import Path

import pandas as pd

import tpflux

DATASET = os.environ.get("TPFLUX_QUICKSTART_DATASET", "ch4-sites")
CHAINS = int(os.environ.get("TPFLUX_QUICKSTART_CHAINS", "4"))
DRAWS = int(os.environ.get("TPFLUX_QUICKSTART_DRAWS", "1000"))
TUNE = int(os.environ.get("TPFLUX_QUICKSTART_TUNE", "1000"))
SEED = int(os.environ.get("TPFLUX_QUICKSTART_SEED", "5"))
OUT = Path(os.environ.get("TPFLUX_QUICKSTART_OUT", "quickstart-run"))
RUN = OUT / "run"
FIGURES = OUT / "figures"
FIGURES.mkdir(parents=True, exist_ok=True)
for previous in FIGURES.glob("*.png"):  # figures of a previous quickstart run
    previous.unlink()
print(f"tpflux {tpflux.__version__}: dataset {DATASET}, {CHAINS} chains × ({TUNE} tune + {DRAWS} draws), "
      f"seed {SEED}, output {OUT.resolve()}")

# %% [markdown]
# ## 1. The observations
#
# `tpflux.load_observations()` reads the default dataset `ch4-sites`: daily FLUXNET-CH4 eddy-covariance
# fluxes of freshwater wetlands and the automated chambers at Hongyuan (Tibetan Plateau alpine
# meadow), from `$TPFLUX_DATA` or `../shared/data`. It returns the canonical table (one row per
# site × day: `flux` in nmol m⁻² s⁻¹, positive = emission, `soil_temp_c` in °C, …) together with
# the rows the readers dropped and the sites they skipped, each with its reason. Your own files go
# in the same way: `tpflux.load_observations("my_chambers.csv")`, then
# `tpflux.fit_ea("my_chambers.csv")`.

# %%
obs = tpflux.load_observations(dataset=DATASET, seed=SEED)
table = obs.table
sites = (table.groupby("site")
         .agg(ecosystem=("ecosystem", "first"), method=("method", "first"), rows=("flux", "size"),
              first=("date", "min"), last=("date", "max"))
         .reset_index())
print(f"{len(table)} rows at {len(sites)} sites" + (" [SYNTHETIC DATA]" if obs.synthetic else ""))
print(sites.to_string(index=False))
for reason, n in obs.dropped.items():
    print(f"dropped {n} rows: {reason}")
for site, why in obs.skipped_sites.items():
    print(f"skipped site {site}: {why}")

# %% [markdown]
# ## 2. The fit
#
# One activation energy E per flux class (ecosystem × sign: wetland emission, wetland uptake,
# grassland emission, grassland uptake) and season (julian: growing May–Sep, non-growing
# Oct–Apr), with site effects. `fit_ea` validates the data before sampling and raises `DataError`
# (naming file, row and column) for input it cannot use. The result holds the ArviZ DataTree
# (`fit.datatree`), the summary table, the diagnostics and the typed configuration.

# %%
fit = tpflux.fit_ea(dataset=DATASET, seasons="julian", likelihood="normal",
                    chains=CHAINS, draws=DRAWS, tune=TUNE, seed=SEED)
print(repr(fit))
print(fit.config)

# %% [markdown]
# ## 3. Diagnostics
#
# The convergence gate: R-hat ≤ 1.01, bulk and tail ESS ≥ 400 and no divergent transitions.
# Cite a fit only when the verdict is `pass`. When it fails, fit again with more draws
# (`fit.refit(draws=2000, tune=2000)`); the rank plots show which parameters mix badly (each
# chain's ranks are uniform when the chains agree). A short test run (few draws) fails the gate;
# that is expected.

# %%
diagnostics = fit.diagnostics
print(f"verdict: {diagnostics['verdict']}")
gate = diagnostics["gate"]
print(f"  R-hat max     {diagnostics['r_hat_max']:.3f}  (gate ≤ {gate['r_hat_max']})")
print(f"  bulk ESS min  {diagnostics['ess_bulk_min']:.0f}  (gate ≥ {gate['ess_bulk_min']})")
print(f"  tail ESS min  {diagnostics['ess_tail_min']:.0f}  (gate ≥ {gate['ess_tail_min']})")
print(f"  divergences   {diagnostics['divergences']}  (gate ≤ {gate['divergences']})")
for failure in diagnostics.get("failed", []):
    print(f"  failed: {failure}")
rank = fit.plot_rank()
rank.savefig(FIGURES / "rank.png", dpi=100)
rank

# %% [markdown]
# ## 4. The temperature response
#
# CH4 flux against soil temperature per flux class × season: the observations, the population
# curve (posterior median) and its 95 % equal-tailed interval. Plot methods return matplotlib
# Figures without drawing or saving them; `fit.plot_arrhenius()` (ln|F| against 1/kT, with a line
# per site) and `fit.plot_season_difference()` (posterior of ΔE) work the same way; the next cell
# saves them to the figures folder too.

# %%
fig = fit.plot_temperature_response()
fig.savefig(FIGURES / "temperature_response.png", dpi=150)
fig

# %%
fit.plot_arrhenius().savefig(FIGURES / "arrhenius.png", dpi=100)
season_fig = fit.plot_season_difference()  # None with a single season
if season_fig is not None:
    season_fig.savefig(FIGURES / "season_difference.png", dpi=100)
print(f"figures in {FIGURES}:", ", ".join(sorted(p.name for p in FIGURES.glob("*.png"))))

# %% [markdown]
# ## 5. Save and load
#
# `fit.save(folder)` writes the run folder the command line writes: `ea_posterior.nc` (the DataTree,
# with the configuration, data checksum, seed and package versions in its attributes),
# `ea_summary.csv` and `diagnostics.json`, atomically as a whole. A folder that holds a previous run
# is replaced only with `overwrite=True`. `tpflux.load(folder)` returns the same kind of object;
# its summary equals the original's, and `loaded.refit()` fits again from the stored configuration
# alone (the same seed gives identical posterior arrays). `tpflux.build_report(folder)` adds an
# HTML report with figures and tables.

# %%
fit.save(RUN, overwrite=True)
loaded = tpflux.load(RUN)
pd.testing.assert_frame_equal(loaded.summary(), fit.summary())
print(f"saved to {RUN}: {', '.join(sorted(p.name for p in RUN.iterdir()))}")
print(f"reloaded: {loaded!r}; summary equal to the fit's")

# %% [markdown]
# ## 6. The numbers to cite
#
# Activation energies E (eV) per flux class × season and the season difference
# ΔE = E(non-growing) − E(growing) with P(ΔE > 0), all as medians with 95 % equal-tailed intervals.
# The full table (`fit.summary()`, the same as `ea_summary.csv`) also holds lnR, Q10, the fold
# change from 0 to 30 °C, the site effects E_site, the between-site spread τ and σ, each with its
# ESS and R-hat.

# %%
print(fit.result_text())

# %%
summary = fit.summary()
columns = ["flux_class", "season", "median", "ci_low", "ci_high", "ess_bulk", "r_hat"]
activation = summary[summary["quantity"] == "E"][columns]
print(activation.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
