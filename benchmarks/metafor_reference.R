# REML reference numbers for the Bayesian log-response-ratio meta-analysis (models/meta.py).
#
# Usage:  Rscript benchmarks/metafor_reference.R [EK_TABLE] [CURTIS_CSV_OUT] [FEATURES_JSON] [BCG_CSV]
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
  method = cur$method, fungrp = cur$fungrp, genus = cur$genus, species = cur$species,
  time = cur$time)
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

# ---------------------------------------------------------------- moderators, small-study test,
# leave-one-out and cumulative estimates (the issue-16 features), printed as one JSON object
# (tests/data/metafor_features.json holds it; written when a third argument gives the path).
#   curtis_mods — dat.curtis1998, rma.mv(yi, vi, mods = ~ 0 + method + fungrp + I(time - mean(time)),
#                 random = list(~1 | paper, ~1 | id)): the design of --moderators method,fungrp,time
#   bcg_*       — dat.bcg (Colditz et al. 1994, JAMA 271:698), log risk ratios escalc("RR"),
#                 exported to tests/data/bcg.csv: rma(yi, vi) REML, regtest() (Egger, predictor sei,
#                 model "rma"), leave1out(), cumul() ordered by year, and
#                 rma(yi, vi, mods = ~ I(ablat - mean(ablat)) + alloc) (alloc: alternate reference).
features_out <- if (length(args) >= 3) args[3] else NA
bcg_out <- if (length(args) >= 4) args[4] else "tests/data/bcg.csv"

cm <- rma.mv(yi, vi, mods = ~ 0 + method + fungrp + I(time - mean(time)),
             random = list(~ 1 | study, ~ 1 | site), data = cur_es, method = "REML")
bcg <- escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
write.csv(data.frame(trial = bcg$trial, author = bcg$author, year = bcg$year, ablat = bcg$ablat,
                     alloc = bcg$alloc, yi = as.numeric(bcg$yi), vi = as.numeric(bcg$vi)),
          bcg_out, row.names = FALSE)
b0 <- rma(yi, vi, data = bcg, method = "REML")
eg <- regtest(b0)
eg_fit <- rma(yi, vi, mods = ~ sqrt(vi), data = bcg, method = "REML")
l1 <- leave1out(b0)
cu <- cumul(b0, order = bcg$year)
bm <- rma(yi, vi, mods = ~ I(ablat - mean(ablat)) + alloc, data = bcg, method = "REML")
coefs <- function(m) list(name = rownames(m$beta), estimate = as.numeric(m$beta), se = m$se)
features <- list(
  source = sprintf("benchmarks/metafor_reference.R, metafor %s, %s", packageVersion("metafor"),
                   R.version.string),
  curtis_mods = c(coefs(cm), list(sigma2 = cm$sigma2)),
  bcg_rma = list(estimate = as.numeric(b0$beta), se = b0$se, tau2 = b0$tau2),
  bcg_regtest = list(slope = as.numeric(eg_fit$beta[2]), slope_se = eg_fit$se[2],
                     zval = eg$zval, pval = eg$pval, limit = as.numeric(eg$est)),
  bcg_leave1out = list(trial = bcg$trial, estimate = l1$estimate, se = l1$se, tau2 = l1$tau2),
  bcg_cumul = list(trial = bcg$trial[order(bcg$year)], year = sort(bcg$year),
                   estimate = cu$estimate, se = cu$se, tau2 = cu$tau2),
  bcg_mods = c(coefs(bm), list(tau2 = bm$tau2)))
json <- jsonlite::toJSON(features, digits = 10, auto_unbox = TRUE, pretty = TRUE)
if (!is.na(features_out)) writeLines(json, features_out) else cat(json, "\n", file = stderr())
