"""Fit hierarchical Boltzmann–Arrhenius activation energies of CH4 flux by flux class, season and site.

    python -m inference.fit_ea [--dataset NAME | --data PATH] [--seasons julian|freeze-thaw]
                               [--likelihood normal|student] [--chains --draws --tune --seed --out]

Writes ``ea_posterior.nc`` (ArviZ DataTree), ``ea_summary.csv``, ``diagnostics.json`` to the run folder.
The same fit from Python: ``tpflux.fit_ea(...)``.
"""

from __future__ import annotations

import sys

from data.registry import add_observation_arguments
from data.seasons import SCHEMES
from inference import runio


def add_model_arguments(p) -> None:
    """The model and sampler options fit_ea shares with compare_seasons (defaults: the config's)."""
    from models.arrhenius_config import LIKELIHOODS, TAU_SHARING
    from tpflux.activation import SAMPLERS, ActivationEnergyConfig

    d = ActivationEnergyConfig()
    add_observation_arguments(p)
    p.add_argument("--likelihood", default=d.likelihood, choices=LIKELIHOODS,
                   help="normal: exact marginal likelihood from sufficient statistics (calibrated, "
                        "benchmarks/sbc_runs); student: robust to outliers, per observation, less well "
                        "calibrated on small designs")
    p.add_argument("--residuals", default=d.residuals, choices=("ar1", "iid"),
                   help="ar1 (default): residuals of each site × class × season correlate ρ_c^Δ over Δ "
                        "days (daily series are serially correlated); iid: independent residuals")
    p.add_argument("--classes", default=None, metavar="A,B,...",
                   help="flux classes to fit (default: each ecosystem's known directions; wetland "
                        "uptake, mostly noise around small fluxes, only when named)")
    p.add_argument("--tau", default=d.tau, choices=TAU_SHARING,
                   help="site spreads: shared (one τ per season for all flux classes) or class (each "
                        "class its own, partially pooled across classes)")
    p.add_argument("--covariate", default=None, metavar="COLUMN",
                   help="a numeric column of the canonical table (wtd_m: water table, m; swc: soil "
                        "water content) moderating E and lnR: E_ij = E_cs + β_E,c·(z_ij − z̄_c), lnR "
                        "likewise; rows without a value are dropped and counted")
    p.add_argument("--sampler", default=d.sampler, choices=SAMPLERS,
                   help="NUTS implementation (nutpie: fastest here; pymc: PyMC's own)")
    p.add_argument("--target-accept", type=float, default=d.target_accept,
                   help="NUTS target acceptance rate (higher: smaller steps, fewer divergences)")
    p.add_argument("--t-ref", type=float, default=d.t_ref_c, help="reference temperature T_C (°C)")
    p.add_argument("--min-obs", type=int, default=d.min_obs,
                   help="minimum observations per flux class × season")
    runio.add_sampling_args(p, chains=d.chains, draws=d.draws, tune=d.tune)


def parser():
    p = runio.base_parser("fit_ea", __doc__.split("\n\n")[0])
    p.add_argument("--seasons", default="julian", choices=SCHEMES, help="season scheme")
    from tpflux.activation import PPC_DRAWS

    p.add_argument("--ppc-draws", type=int, default=PPC_DRAWS, help="posterior-predictive draws kept per chain")
    p.add_argument("--save-log-likelihood", action="store_true",
                   help="keep the pointwise log-likelihood in ea_posterior.nc (large; LOO and the "
                        "report compute it from the posterior when it is not kept)")
    add_model_arguments(p)
    return p


@runio.cli
def main(argv: list[str] | None = None) -> int:
    return runio.run_job("fit_ea", parser(), argv, fit)


def model_options(args) -> dict:
    """The keyword options of ``add_model_arguments`` for the API (fit_ea, compare_seasons)."""
    return dict(dataset=args.dataset, flux_column=args.flux_column, per_chamber=args.per_chamber,
                likelihood=args.likelihood, residuals=args.residuals, classes=args.classes,
                tau=args.tau, covariate=args.covariate, sampler=args.sampler,
                target_accept=args.target_accept, t_ref_c=args.t_ref, min_obs=args.min_obs,
                chains=args.chains, draws=args.draws, tune=args.tune, seed=args.seed)


def fit(args, argv):
    import tpflux

    return tpflux.fit_ea(args.data, seasons=args.seasons, ppc_draws=args.ppc_draws,
                         save_log_likelihood=args.save_log_likelihood,
                         command_line=argv, **model_options(args))


if __name__ == "__main__":
    sys.exit(main())
