"""Conventions every table, figure, summary and gate shares (no pymc: reports read them too).

One interval convention: 95 % equal-tailed. One convergence gate for every posterior the suite
reports. One set of summary columns. The command-line contract of every entry point: exit codes, a
DataError as one line on stderr, progress on stderr.
"""

import datetime as _dt
import functools
import sys

from data.errors import DataError

CI_PROB = 0.95
CI_KIND = "eti"
CI_QUANTILES = ((1 - CI_PROB) / 2, 0.5, 1 - (1 - CI_PROB) / 2)
CI_LABEL = "95 % equal-tailed interval"

# Convergence gate: R-hat (rank-normalised, split) at most 1.01, bulk and tail ESS at least 400
# (Vehtari et al. 2021), no divergent transition.
GATE = {"r_hat_max": 1.01, "ess_bulk_min": 400, "ess_tail_min": 400, "divergences": 0}

SUMMARY_STATS = ("mean", "sd", "median", "ci_low", "ci_high", "ess_bulk", "ess_tail", "r_hat")

# Exit codes of every entry point (DESIGN.md): success, bad input (nothing written), gate failed.
EXIT_OK, EXIT_BAD_INPUT, EXIT_GATE = 0, 2, 3

# Default random seed of every job and API function (same seed, same result).
DEFAULT_SEED = 20261122

# E-BFMI below this signals poor exploration of the tails (Betancourt 2016); reported, not gated.
BFMI_LOW = 0.3

# Reading a PSIS-LOO ELPD difference (Sivula, Magnusson & Vehtari 2020): below ELPD_NEGLIGIBLE it
# is small whatever its SE; above, it tells two models apart when it exceeds ELPD_DISTINCT_SE SEs.
ELPD_NEGLIGIBLE = 4.0
ELPD_DISTINCT_SE = 2.0

# fit_ea: the sampled hyperparameters, and the variables the convergence gate reads (those plus
# the site-level E).
EA_SAMPLED_VARIABLES = ("E", "lnR", "beta_E", "beta_R", "tau_E", "tau_R", "omega_E", "omega_R",
                        "tau_E_class", "tau_R_class", "sigma", "rho", "method_offset", "nu")
EA_GATED_VARIABLES = ("E", "lnR", "beta_E", "beta_R", "tau_E", "tau_R", "omega_E", "omega_R",
                      "tau_E_class", "tau_R_class", "sigma", "rho", "E_site")


# ---------------------------------------------------------------- command line
def progress(message: str) -> None:
    """One line of progress on stderr (stdout stays for results)."""
    print(f"[{_dt.datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def cli(main):
    """Wrap an entry point: a DataError becomes exit 2 with one line on stderr, no traceback."""

    @functools.wraps(main)
    def wrapped(argv: list[str] | None = None) -> int:
        try:
            return main(argv)
        except DataError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT

    return wrapped
