# Frequentist reference for the activation-energy fit: lme4::lmer per flux class x season.
#
# Usage:  Rscript benchmarks/lme4_reference.R PREPARED_CSV
#   PREPARED_CSV  columns site, flux_class, season, x, y: the table inference.ea_fitting.prepare
#                 builds (x = 1/(k T_C) - 1/(k T) in eV^-1, y = ln|F|); benchmarks/fit_ea.py
#                 --vs-lme4 writes it
# Needs R with lme4 (Debian: r-cran-lme4). Prints one CSV block on stdout:
#   flux_class, season, lme4_E, lme4_se, n_obs, n_sites
# and a last line "# read_s=..., fit_s=..., lme4 VERSION": the time spent reading and fitting
# (the caller times the whole process, R start-up included).
#
# Model per cell: y ~ x + (1 + x | site), REML: the slope of x is E, and the site intercepts and
# slopes are correlated random effects -- model M1 of DESIGN.md with independent residuals.

suppressPackageStartupMessages(library(lme4))

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 1) stop("usage: Rscript benchmarks/lme4_reference.R PREPARED_CSV")

t0 <- proc.time()[["elapsed"]]
d <- read.csv(args[1], stringsAsFactors = FALSE)
t1 <- proc.time()[["elapsed"]]

cells <- split(d, list(d$flux_class, d$season), drop = TRUE, sep = "|")
rows <- lapply(names(cells), function(key) {
  g <- cells[[key]]
  # singular fits (a random-effect variance at zero) are reported by lmer and kept: the fixed
  # slope is still the estimate
  m <- suppressMessages(lmer(y ~ x + (1 + x | site), data = g, REML = TRUE))
  co <- summary(m)$coefficients
  data.frame(flux_class = g$flux_class[1], season = g$season[1], lme4_E = co["x", "Estimate"],
             lme4_se = co["x", "Std. Error"], n_obs = nrow(g), n_sites = length(unique(g$site)))
})
t2 <- proc.time()[["elapsed"]]

out <- do.call(rbind, rows)
write.csv(out, stdout(), row.names = FALSE)
cat(sprintf("# read_s=%.3f, fit_s=%.3f, lme4 %s, %s\n", t1 - t0, t2 - t1, packageVersion("lme4"),
            R.version.string))
