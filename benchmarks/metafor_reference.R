# REML reference numbers for the Bayesian log-response-ratio meta-analysis (models/meta.py).
#
# Usage:  Rscript benchmarks/metafor_reference.R [EK_TABLE] [CURTIS_CSV_OUT]
#   EK_TABLE        the COMPASS-DOE precipitation-manipulation CH4 table
#                   (default ../shared/data/misc/EK_methane_precip_manipulation.csv)
#   CURTIS_CSV_OUT  where to write dat.curtis1998 in the warming-table layout
#                   (default tests/data/curtis1998.csv)
# Needs R with metafor (Debian: r-cran-metafor). Prints one CSV block on stdout:
#   dataset, model, level, estimate, se, ci_lb, ci_ub, sigma2_study, sigma2_site, tau2, k
#
# Both fits are the three-level model of models/meta.py without warming slope:
#   yi ~ N(theta_i, vi), theta_i = mu[level] + u_study + u_site   (REML, no intercept).
# Data sets:
#   curtis1998 — metafor::dat.curtis1998 (Curtis & Wang 1998, Oecologia 113:299; Hedges, Gurevitch
#                & Curtis 1999, Ecology 80:1150): woody-plant biomass under elevated vs ambient CO2.
#                lnRR = escalc("ROM", m1i elevated, m2i ambient); study = paper, site = id (one
#                experiment per row); moderator = method (GC growth chamber, GH greenhouse, OTC
#                open-top chamber).
#   ek-precip  — COMPASS-DOE/methane-synthesis EK_methane_precip_manipulation.csv: SD from the SD
#                column, else SE * sqrt(n); rows whose means change sign are left out (their lnRR
#                does not exist); study = first column, site = study + latitude + longitude +
#                Other_factor; moderator = Measurement Period.

suppressPackageStartupMessages(library(metafor))

args <- commandArgs(trailingOnly = TRUE)
ek_path <- if (length(args) >= 1) args[1] else "../shared/data/misc/EK_methane_precip_manipulation.csv"
curtis_out <- if (length(args) >= 2) args[2] else "tests/data/curtis1998.csv"

fit_levels <- function(dat, level_col, dataset) {
  dat$level <- factor(dat[[level_col]])
  m <- rma.mv(yi, vi, mods = ~ 0 + level, random = list(~ 1 | study, ~ 1 | site),
              data = dat, method = "REML")
  data.frame(dataset = dataset, model = "rma.mv study+site REML",
             level = sub("^level", "", rownames(m$beta)),
             estimate = as.numeric(m$beta), se = m$se, ci_lb = m$ci.lb, ci_ub = m$ci.ub,
             sigma2_study = m$sigma2[1], sigma2_site = m$sigma2[2], tau2 = sum(m$sigma2),
             k = as.integer(table(dat$level)[levels(dat$level)]))
}

# ---------------------------------------------------------------- curtis1998
cur <- dat.curtis1998
cur_table <- data.frame(
  study = paste0("paper", cur$paper), site = paste0("id", cur$id), ecosystem = cur$fungrp,
  season = NA, warming_c = NA,
  control_mean = cur$m2i, control_sd = cur$sd2i, control_n = cur$n2i,
  treatment_mean = cur$m1i, treatment_sd = cur$sd1i, treatment_n = cur$n1i,
  method = cur$method, fungrp = cur$fungrp, genus = cur$genus, species = cur$species)
dir.create(dirname(curtis_out), showWarnings = FALSE, recursive = TRUE)
write.csv(cur_table, curtis_out, row.names = FALSE, na = "")
cur_es <- escalc("ROM", m1i = treatment_mean, sd1i = treatment_sd, n1i = treatment_n,
                 m2i = control_mean, sd2i = control_sd, n2i = control_n, data = cur_table)
res_curtis <- fit_levels(cur_es, "method", "curtis1998")

# ---------------------------------------------------------------- EK precipitation table
ek <- read.csv(ek_path, check.names = FALSE, stringsAsFactors = FALSE)
names(ek)[1] <- "study"
sd_or_se <- function(sd, se, n) ifelse(is.na(sd), se * sqrt(n), sd)
ek$control_sd <- sd_or_se(ek$SD_CH4_control, ek$SE_CH4_control, ek$N_control)
ek$treatment_sd <- sd_or_se(ek$SD_CH4_manip, ek$SE_CH4_manip, ek$N_manip)
same_sign <- sign(ek$CH4_control) == sign(ek$CH4_manip) & ek$CH4_control != 0
ek <- ek[same_sign, ]
ek$site <- paste(ek$study, ek$Latitude, ek$Longitude, trimws(ek$Other_factor))
ek$period <- ek[["Measurement Period"]]
ek_es <- escalc("ROM", m1i = CH4_manip, sd1i = treatment_sd, n1i = N_manip,
                m2i = CH4_control, sd2i = control_sd, n2i = N_control, data = ek)
res_ek <- fit_levels(ek_es, "period", "ek-precip")

out <- rbind(res_curtis, res_ek)
write.csv(format(out, digits = 10), stdout(), row.names = FALSE, quote = TRUE)
cat(sprintf("# metafor %s, %s; %d ek rows used of %d\n", packageVersion("metafor"),
            R.version.string, nrow(ek), length(same_sign)), file = stderr())

# Effect sizes of a few rows (escalc "ROM"), for the effect-size test.
es <- rbind(
  data.frame(dataset = "curtis1998", row = 1:3, yi = cur_es$yi[1:3], vi = cur_es$vi[1:3]),
  data.frame(dataset = "ek-precip", row = as.integer(rownames(ek_es))[1:3],
             yi = ek_es$yi[1:3], vi = ek_es$vi[1:3]))
cat("\n")
write.csv(format(es, digits = 10), stdout(), row.names = FALSE, quote = TRUE)
