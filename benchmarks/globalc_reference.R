# The global carbon-budget resampling of Jian et al. (2022) run with the authors' own R code
# (PNNL-TES/GlobalC @ 9d43778d66eb3d670c1e76b3b1ecac37626c9885) on the shared input files, as the
# reference for tpflux's budget variants (benchmarks/globalc_reference.py prints both side by side).
#
#   Rscript benchmarks/globalc_reference.R [DATA_DIR] [OUT_CSV] [SEED]
#     DATA_DIR  the GlobalC data/ tables (default ../shared/data/jian2022_globalc)
#     OUT_CSV   default benchmarks/globalc_reference.csv
#     SEED      default 20190827 (set.seed of Topdown_GlobalRs.Rmd)
#
# Needs dplyr, tidyr, tibble (no plotting packages: the figure code is left out). Functions below
# are copied verbatim from the named files at that commit; the data preparation follows the chunks
# of Topdown_GlobalRs.Rmd ("load data", "calculate vegetation areas", "boostrapping-prep",
# "bootstrap-creation", "gpp-bootstrap", "rs-bootstrap"), in the same order so the random stream is
# the authors'. Output rows (long format): r_variant, quantity, median, ci_low, ci_high, mean, sd.
#   rcode-s1 / rcode-s2 / rcode-s4: scenario 1 (pooled ratios), 2 (area-weighted ratios,
#     published Fig. 1), 4 (period-aggregated estimates, GlobalC_nc_revision.Rmd) with the
#     authors' RESAMPLE = method3 as published;
#   resampled-s1 / -s2 / -s4: the same with method3 changed in one respect only: the estimates
#     entering each mean of 10 are picked with replacement (sample.int) instead of the first 10
#     (rnorm(n, mean = x, sd = s) with length(x) > n uses x[1:n]) -- the recipe as described.
# Quantities per variant: GPP_direct, GPP_implied, RS_direct, RS_implied (2.5/50/97.5 %),
#   p_agree_* (prob_agreement, functions-stats.R), overlap_*_direct_share / _implied_share and
#   intersection_* (calc_overlap, functions-stats.R: area of each distribution beyond the point
#   where the two densities cross), plus the land-area shares of the IGBP groups.

suppressPackageStartupMessages({
  library(tibble)
  library(tidyr)
  library(dplyr)
})

args <- commandArgs(trailingOnly = TRUE)
DATA_DIR <- if (length(args) >= 1) args[1] else "../shared/data/jian2022_globalc"
OUT_CSV <- if (length(args) >= 2) args[2] else "benchmarks/globalc_reference.csv"
SEED <- if (length(args) >= 3) as.integer(args[3]) else 20190827L

# ---------------------------------------------------------------- functions-resampling.R @9d43778d
method1 <- function(n, x) { # ignore all errors
  mean(sample(x, n, replace = TRUE))
}
method2 <- function(n, x, s, f = median) { # replace NA errors with median error
  cv <- s / x
  cv <- replace_na(cv, f(cv, na.rm = TRUE))
  s <- if_else(is.na(s), x * cv, s)
  mean(rnorm(n, mean = x, sd = s))
}
method3 <- function(n, x, s) { # replace NA errors with max error
  method2(n, x, s, max)
}
# Not in GlobalC: method3 with the n estimates picked with replacement before the Normal draw.
method3_resampled <- function(n, x, s) {
  cv <- s / x
  cv <- replace_na(cv, max(cv, na.rm = TRUE))
  s <- if_else(is.na(s), x * cv, s)
  i <- sample.int(length(x), n, replace = TRUE)
  mean(rnorm(n, mean = x[i], sd = s[i]))
}

# ---------------------------------------------------------------- functions-calc_bootstrap.R @9d43778d
calc_bootstrap_gpp <- function(x) {
  x %>%
    mutate(
      Rc2 = (Rc_agr * ag_area + Rc_df * df_area + Rc_ef * ef_area + Rc_mf * mf_area +
               Rc_gra * gra_area + Rc_shr * shr_area + Rc_rest *
               (1 - ag_area - df_area - ef_area - mf_area - gra_area - shr_area)),
      FsFr = (1 - Froot) / Froot,
      Rroot = Rs_raw * Rc,
      Rshoot = Rroot * FsFr,
      Froot2 = Froot_df * df_area + Froot_ef * ef_area + Froot_mf * mf_area +
        Froot_rest * (1 - df_area - ef_area - mf_area),
      FsFr2 = (1 - Froot2) / Froot2,
      Rroot2 = Rs_raw * Rc2,
      Rshoot2 = Rroot2 * FsFr2,
      Rroot4 = Rs_raw_agg * Rc2,
      Rshoot4 = Rroot4 * FsFr2,
      GPP = NPP + Rroot + Rshoot,
      GPP2 = NPP + Rroot2 + Rshoot2,
      GPP4 = NPP + Rroot4 + Rshoot4
    )
}
calc_bootstrap_rs <- function(x) {
  x %>%
    mutate(
      RaGpp = RaGpp_rest,
      RaGpp2 = RaGpp_df * df_area + RaGpp_ef * ef_area + RaGpp_mf * mf_area +
        RaGpp_gra * gra_area + RaGpp_rest * (1 - df_area - ef_area - mf_area - gra_area),
      Froot2 = Froot_df * df_area + Froot_ef * ef_area + Froot_mf * mf_area +
        Froot_rest * (1 - df_area - ef_area - mf_area),
      Ra1 = GPP_raw * RaGpp,
      Ra2 = GPP_raw - NPP,
      Ra3 = if_else(Ra2 < 0, Ra1, Ra2),
      Ra_avg1 = (Ra1 + Ra3) / 2,
      Rroot = Ra_avg1 * Froot2,
      Rshoot = Ra_avg1 * (1 - Froot2),
      Rs_topdown = NPP - HerbComsum - Fire - sink - DOC - BVOCs + Rroot,
      Ra4 = GPP_raw * RaGpp2,
      Ra_avg2 = (Ra4 + Ra3) / 2,
      Rroot2 = Ra_avg2 * Froot2,
      Rshoot2 = Ra_avg2 * (1 - Froot2),
      Rs_topdown2 = NPP - HerbComsum - Fire - sink - DOC - BVOCs + Rroot2,
      Ra5 = GPP_raw_agg_group * RaGpp,
      Ra6 = GPP_raw_agg_group - NPP,
      Ra7 = if_else(Ra6 < 0, Ra5, Ra6),
      Ra8 = GPP_raw_agg_group * RaGpp2,
      Ra_avg4 = (Ra8 + Ra7) / 2,
      Rroot4 = Ra_avg4 * Froot2,
      Rs_topdown4 = NPP - HerbComsum - Fire - sink - DOC - BVOCs + Rroot4
    )
}

# ---------------------------------------------------------------- functions.R @9d43778d
cal_Froot <- function(Froot_data, srdb_data) {
  Froot_data %>%
    select(Latitude, Longitude, Fshoot, Froot, Ecosystem, IGBP) %>%
    mutate(
      Fshoot = if_else(is.na(Fshoot), 100 - Froot, as.numeric(Fshoot)),
      Froot = if_else(is.na(Froot), 100 - Fshoot, as.numeric(Froot)),
      Froot = Froot / 100,
      Fshoot = Fshoot / 100
    ) ->
  comb_data
  srdb_data %>%
    select(Latitude, Longitude, Ecosystem_type, Leaf_habit, Rs_annual, Ra_annual, Rh_annual, ER, GPP, NPP) %>%
    filter(!is.na(GPP) | !is.na(NPP) | !is.na(ER)) %>%
    mutate(
      ER = if_else(is.na(ER), GPP, ER),
      Rh_annual = if_else(is.na(Rh_annual), NPP, Rh_annual),
      Ra_annual = if_else(is.na(Ra_annual), Rs_annual - Rh_annual, Ra_annual)
    ) ->
  sub_srdb
  sub_srdb$Froot <- sub_srdb$Ra_annual / (sub_srdb$ER - sub_srdb$Rh_annual)
  sub_srdb <- subset(sub_srdb, !is.na(Froot) & Froot < 0.9 & Froot > 0.1)
  sub_srdb$Fshoot <- 1 - sub_srdb$Froot
  sub_srdb %>% select(Latitude, Longitude, Fshoot, Froot, Ecosystem_type, Leaf_habit) -> sub_srdb
  colnames(sub_srdb) <- colnames(comb_data)
  comb_data <- rbind(comb_data, sub_srdb)
  comb_data[comb_data$Ecosystem == "Cropland", ]$Ecosystem <- "Agriculture"
  return(comb_data)
}
prep_RaGpp <- function(RaGPP_data, srdb_v4) {
  RaGPP_data %>%
    select(Ecosystem, Leaf_habit, RaGPP_ratio) %>%
    mutate(Source = "Meta-papers") -> comb_data
  srdb_v4 %>%
    select(Ecosystem_type, Leaf_habit, Rs_annual, Ra_annual, Rh_annual, ER, GPP, NPP) %>%
    filter(!is.na(GPP) | !is.na(NPP) | !is.na(ER)) %>%
    mutate(
      ER = if_else(is.na(ER), GPP, ER),
      RaGPP_ratio = (ER - NPP) / GPP,
      Source = "srdb_v4"
    ) %>%
    filter(RaGPP_ratio > 0, RaGPP_ratio < 1, !is.na(Ecosystem_type)) %>%
    select(Ecosystem_type, Leaf_habit, RaGPP_ratio, Source) %>%
    bind_rows(comb_data)
}

# ---------------------------------------------------------------- functions-stats.R @9d43778d
prob_agreement <- function(x, raw_quantiles) {
  stopifnot(length(raw_quantiles) == 3)
  mu <- mean(x)
  s <- sd(x)
  p_high <- pnorm((raw_quantiles[3] - mu) / s)
  p_low <- pnorm((raw_quantiles[1] - mu) / s)
  (p_high - p_low) %>% round(4)
}
# calc_overlap without its printing, plot and t-test (which draw nothing that the returned numbers
# use); returns the intersection and both areas instead of the intersection alone. When the
# authors' interval brackets no root, the interval between the two means is used.
calc_overlap <- function(left_sample, right_sample, intersection_interval) {
  if (length(left_sample) > 5000) {
    left_sample <- sample(left_sample, 5000, replace = FALSE)
  }
  if (length(right_sample) > 5000) {
    right_sample <- sample(right_sample, 5000, replace = FALSE)
  }
  left_normal <- shapiro.test(left_sample)$p.value >= 0.05
  right_normal <- shapiro.test(right_sample)$p.value >= 0.05
  mu_left <- mean(left_sample)
  sigma_left <- sd(left_sample)
  mu_right <- mean(right_sample)
  sigma_right <- sd(right_sample)
  if (mu_left > mu_right) {
    stop("It doesn't look like left_sample is actually on the left")
  }
  normal_fn_left <- function(x) dnorm(x, mean = mu_left, sd = sigma_left)
  density_left <- density(left_sample, n = 1024)
  numerical_fn_left <- approxfun(x = density_left$x, y = density_left$y)
  normal_fn_right <- function(x) dnorm(x, mean = mu_right, sd = sigma_right)
  density_right <- density(right_sample, n = 1024)
  numerical_fn_right <- approxfun(x = density_right$x, y = density_right$y)
  left_dist <- if (left_normal) normal_fn_left else numerical_fn_left
  right_dist <- if (right_normal) normal_fn_right else numerical_fn_right
  f <- function(x) (left_dist(x) - right_dist(x))
  if (!isTRUE(f(intersection_interval[1]) * f(intersection_interval[2]) < 0)) {
    intersection_interval <- c(mu_left, mu_right)
  }
  intersection <- uniroot(f, interval = intersection_interval)$root
  traprule <- function(x, y) {
    sum(diff(x) * (head(y, -1) + tail(y, -1)), na.rm = TRUE) / 2
  }
  dx <- 0.01
  left_xaxis_range <- seq(intersection, 4 * max(left_sample), by = dx)
  left_auc <- traprule(x = left_xaxis_range, y = left_dist(left_xaxis_range))
  right_xaxis_range <- seq(0, intersection, by = dx)
  right_auc <- traprule(x = right_xaxis_range, y = right_dist(right_xaxis_range))
  c(intersection = intersection, left_auc = left_auc, right_auc = right_auc,
    left_normal = left_normal, right_normal = right_normal)
}

# ---------------------------------------------------------------- Topdown_GlobalRs.Rmd: load data
read_file <- function(x) read.csv(file.path(DATA_DIR, x), comment.char = "#", stringsAsFactors = FALSE)
srdb_file <- if (file.exists(file.path(DATA_DIR, "srdb-data-v5.csv"))) "srdb-data-v5.csv" else "srdb-data-v5.csv.gz"
srdb_v4 <- read_file(srdb_file)
FlFsFr <- read_file("FlFsFrSummary.csv")
GPP <- read_file("GlobalGPP_Sum.csv")
GPP %>% filter(Year >= 1980 & Flag != "Model") -> GPP
NPP <- read_file("ITONPP.CSV")
NPP <- NPP %>% filter(NPP <= 83 & NPP >= 25)
GlobalRs <- read_file("GlobalRs.csv")
GlobalRs %>% filter(Pub_year > 1980 & !is.na(Rs)) -> GlobalRs
RaGPP <- read_file("RaGPP.csv")
var_Fire <- read_file("Fire_burn_C.csv")
IGBP <- read_file("IGBP.txt") %>%
  left_join(read_file("igbp_mapping.csv"), by = "IGBP2001Pr")

srdb_v4 %>%
  select(Study_number, Biome, Ecosystem_type, Leaf_habit,
         Latitude, Longitude, RC_annual, Ra_annual, Rh_annual) %>%
  filter(RC_annual > 0, RC_annual < 1) ->
sub_srdb
sub_srdb %>%
  mutate(IGBP2 = case_when(
    Ecosystem_type == "Agriculture" ~ "Agriculture",
    Ecosystem_type == "Grassland" ~ "Grassland",
    Ecosystem_type %in% c("Savanna", "Shrubland") ~ "Shrubland",
    Ecosystem_type == "Forest" & Leaf_habit == "Deciduous" ~ "DF",
    Ecosystem_type == "Forest" & Leaf_habit == "Evergreen" ~ "EF",
    Ecosystem_type == "Forest" & Leaf_habit == "Mixed" ~ "Mixed",
    TRUE ~ "Other"
  )) ->
sub_srdb

Froot <- cal_Froot(FlFsFr, srdb_v4)
Froot %>% mutate(IGBP2 = case_when(
  IGBP %in% c("DBF", "Deciduous") & Ecosystem == "Forest" ~ "DF",
  IGBP %in% c("EBF", "ENF", "Evergreen") & Ecosystem == "Forest" ~ "EF",
  IGBP %in% c("MF", "Mixed") & Ecosystem == "Forest" ~ "MF",
  TRUE ~ "Other"
)) -> Froot

GPP %>% mutate(Group_year = case_when(
  Year %in% c(1980) ~ 1986,
  Year %in% c(1988, 1991) ~ 1989,
  Year %in% c(1993) ~ 1992,
  Year %in% c(1995, 1996, 1997) ~ 1995,
  Year %in% c(2000, 2001) ~ 2001,
  Year %in% c(2002, 2003, 2004, 2005, 2006, 2007) ~ 2007,
  Year %in% c(2008, 2009) ~ 2010,
  Year %in% c(2015) ~ 2013)) -> GPP
GlobalRs %>% mutate(Group_year = case_when(
  Pub_year %in% c(1985, 1986) ~ 1986,
  Pub_year %in% c(1987, 1989) ~ 1989,
  Pub_year %in% c(1990, 1992) ~ 1992,
  Pub_year %in% c(1995) ~ 1995,
  Pub_year %in% c(2000, 2001) ~ 2001,
  Pub_year %in% c(2007) ~ 2007,
  Pub_year %in% c(2009) ~ 2010,
  Pub_year %in% c(2014, 2016) ~ 2013)) -> GlobalRs
GPP %>% dplyr::select(Group_year, Group2, GPP, SD) %>%
  group_by(Group_year, Group2) %>%
  summarise_at(vars(GPP, SD), list(mean), na.rm = T) -> GPP_agg_group
GlobalRs %>% dplyr::select(Group_year, Rs, SD) %>%
  group_by(Group_year) %>%
  summarise_at(vars(Rs, SD), list(mean), na.rm = T) -> GlobalRs_agg
GPP %>% dplyr::select(Group_year, GPP, SD) %>%
  group_by(Group_year) %>%
  summarise_at(vars(GPP, SD), list(mean), na.rm = T) -> GPP_agg
GPP %>% dplyr::select(Group2, GPP, SD) %>%
  group_by(Group2) %>%
  summarise_at(vars(GPP, SD), list(mean), na.rm = T) -> GPP_group

# "plot Ra-GPP ratio" chunk (the grouping only)
var_RaGpp <- prep_RaGpp(RaGPP, srdb_v4)
var_RaGpp$Ecosystem <- ifelse(is.na(var_RaGpp$Ecosystem), var_RaGpp$Ecosystem_type, var_RaGpp$Ecosystem)
var_RaGpp %>%
  mutate(IGBP2 = case_when(
    Ecosystem %in% c("Crop", "Tundra", "Wetland", "Agriculture") ~ "Other",
    Ecosystem %in% c("Grassland", "Savanna") ~ "Grassland",
    Ecosystem == "Forest" & Leaf_habit == "Deciduous" ~ "Deciduous",
    Ecosystem == "Forest" & Leaf_habit == "Evergreen" ~ "Evergreen",
    Ecosystem == "Forest" & Leaf_habit == "Forest" ~ "Mixed",
    Ecosystem == "Forest" & Leaf_habit == "Mixed" ~ "Mixed",
    TRUE ~ "NOTA"
  )) -> var_RaGpp

# "calculate vegetation areas"
IGBP %>%
  filter(IGBP_group != "WAT") %>%
  group_by(IGBP_group) %>%
  summarise(rel_area = sum(cos(abs(Latitude) / 180 * pi))) %>%
  mutate(percent = rel_area / sum(rel_area)) -> IGBP_summary
ag_area <- IGBP_summary[IGBP_summary$IGBP_group == "CRO", ]$percent
df_area <- IGBP_summary[IGBP_summary$IGBP_group == "DF", ]$percent
ef_area <- IGBP_summary[IGBP_summary$IGBP_group == "EF", ]$percent
mf_area <- IGBP_summary[IGBP_summary$IGBP_group == "MF", ]$percent
gra_area <- IGBP_summary[IGBP_summary$IGBP_group == "GRA", ]$percent
shr_area <- IGBP_summary[IGBP_summary$IGBP_group == "SH", ]$percent

# "boostrapping-prep"
var_RC <- sub_srdb %>%
  select(RC_annual, Ecosystem_type, IGBP2) %>%
  filter(RC_annual > 0.01, RC_annual < 0.99, !is.na(RC_annual))
var_df_rc <- var_RC %>% filter(IGBP2 == "DF")
var_ef_rc <- var_RC %>% filter(IGBP2 == "EF")
var_mf_rc <- var_RC %>% filter(IGBP2 == "Mixed")
var_agr_rc <- var_RC %>% filter(Ecosystem_type == "Agriculture")
var_gra_rc <- var_RC %>% filter(Ecosystem_type == "Grassland")
var_shr_rc <- var_RC %>% filter(Ecosystem_type %in% c("Shrubland", "Savanna"))
var_rest_rc <- var_RC
var_gra_froot <- Froot[Froot$Ecosystem == "Grassland", ]$Froot
var_rest_froot <- Froot$Froot
var_ef_froot <- Froot[Froot$IGBP2 == "EF", ]$Froot
var_df_froot <- Froot[Froot$IGBP2 == "DF", ]$Froot
var_mf_froot <- Froot[Froot$IGBP2 == "MF", ]$Froot
var_RaGpp_df <- var_RaGpp %>% filter(IGBP2 == "Deciduous") %>% pull(RaGPP_ratio)
var_RaGpp_ef <- var_RaGpp %>% filter(IGBP2 == "Evergreen") %>% pull(RaGPP_ratio)
var_RaGpp_mf <- var_RaGpp %>% filter(IGBP2 == "Mixed") %>% pull(RaGPP_ratio)
var_RaGpp_gra <- var_RaGpp %>% filter(IGBP2 == "Grassland") %>% pull(RaGPP_ratio)

# ---------------------------------------------------------------- bootstrap (chunks as published)
bootstrap <- function(RESAMPLE, seed) {
  RESAMPLE_noSD <- method1
  N_SAMPLES <- 10000
  sample_size <- 10
  set.seed(seed)
  bootstrap_data <- tibble(
    Rs_raw = sapply(rep(sample_size, N_SAMPLES), RESAMPLE, GlobalRs$Rs, GlobalRs$SD),
    Rs_raw_agg = sapply(rep(sample_size, N_SAMPLES), RESAMPLE, GlobalRs_agg$Rs, GlobalRs_agg$SD),
    GPP_raw = sapply(rep(sample_size, N_SAMPLES), RESAMPLE, GPP$GPP, GPP$SD),
    GPP_raw_agg = sapply(rep(sample_size, N_SAMPLES), RESAMPLE, GPP_agg$GPP, GPP_agg$SD),
    GPP_raw_group = sapply(rep(sample_size, N_SAMPLES), RESAMPLE, GPP_group$GPP, GPP_group$SD),
    GPP_raw_agg_group = sapply(rep(sample_size, N_SAMPLES), RESAMPLE, GPP_agg_group$GPP, GPP_agg_group$SD)
  )
  bootstrap_data %>%
    mutate(
      NPP = sapply(rep(sample_size, N_SAMPLES), RESAMPLE_noSD, NPP$NPP),
      Rc_agr = sapply(rep(sample_size, N_SAMPLES), RESAMPLE_noSD, var_agr_rc$RC_annual),
      Rc_df = sapply(rep(sample_size, N_SAMPLES), RESAMPLE_noSD, var_df_rc$RC_annual),
      Rc_ef = sapply(rep(sample_size, N_SAMPLES), RESAMPLE_noSD, var_ef_rc$RC_annual),
      Rc_mf = sapply(rep(sample_size, N_SAMPLES), RESAMPLE_noSD, var_mf_rc$RC_annual),
      Rc_gra = sapply(rep(sample_size, N_SAMPLES), RESAMPLE_noSD, var_gra_rc$RC_annual),
      Rc_shr = sapply(rep(sample_size, N_SAMPLES), RESAMPLE_noSD, var_shr_rc$RC_annual),
      Rc_rest = sapply(rep(sample_size, N_SAMPLES), RESAMPLE_noSD, var_rest_rc$RC_annual),
      Froot_df = sapply(rep(sample_size, N_SAMPLES), RESAMPLE_noSD, var_df_froot),
      Froot_ef = sapply(rep(sample_size, N_SAMPLES), RESAMPLE_noSD, var_ef_froot),
      Froot_mf = sapply(rep(sample_size, N_SAMPLES), RESAMPLE_noSD, var_mf_froot),
      Froot_rest = sapply(rep(sample_size, N_SAMPLES), RESAMPLE_noSD, var_rest_froot),
      Rc = sapply(rep(sample_size, N_SAMPLES), RESAMPLE_noSD, var_RC$RC_annual),
      Froot = sapply(rep(sample_size, N_SAMPLES), RESAMPLE_noSD, Froot$Froot)
    ) -> bootstrap_gpp_draws
  gpp_results <- calc_bootstrap_gpp(bootstrap_gpp_draws)
  bootstrap_data %>%
    mutate(
      NPP = sapply(rep(sample_size, N_SAMPLES), RESAMPLE_noSD, NPP$NPP),
      HerbComsum = rnorm(n = N_SAMPLES, mean = 2.2, sd = 0.2),
      Fire = sapply(rep(sample_size, N_SAMPLES), RESAMPLE, var_Fire$Amount_Pg, var_Fire$SD),
      sink = rnorm(n = N_SAMPLES, mean = 2.10, sd = 0.28),
      DOC = rnorm(n = N_SAMPLES, mean = 2.3, sd = 0.25),
      BVOCs = rnorm(n = N_SAMPLES, mean = 1.007, sd = 0.1),
      RaGpp_df = sapply(rep(sample_size, N_SAMPLES), RESAMPLE_noSD, var_RaGpp_df),
      RaGpp_ef = sapply(rep(sample_size, N_SAMPLES), RESAMPLE_noSD, var_RaGpp_ef),
      RaGpp_mf = sapply(rep(sample_size, N_SAMPLES), RESAMPLE_noSD, var_RaGpp_mf),
      RaGpp_gra = sapply(rep(sample_size, N_SAMPLES), RESAMPLE_noSD, var_RaGpp_gra),
      RaGpp_rest = sapply(rep(sample_size, N_SAMPLES), RESAMPLE_noSD, var_RaGpp$RaGPP_ratio),
      Froot_df = sapply(rep(sample_size, N_SAMPLES), RESAMPLE_noSD, var_df_froot),
      Froot_ef = sapply(rep(sample_size, N_SAMPLES), RESAMPLE_noSD, var_ef_froot),
      Froot_mf = sapply(rep(sample_size, N_SAMPLES), RESAMPLE_noSD, var_mf_froot),
      Froot_gra = sapply(rep(sample_size, N_SAMPLES), RESAMPLE_noSD, var_gra_froot),
      Froot_rest = sapply(rep(sample_size, N_SAMPLES), RESAMPLE_noSD, var_rest_froot)
    ) -> bootstrap_rs_draws
  rs_results <- calc_bootstrap_rs(bootstrap_rs_draws)
  list(gpp = gpp_results, rs = rs_results)
}

# Which columns each scenario compares (direct, implied); scenario 4 as GlobalC_nc_revision.Rmd.
SCENARIOS <- list(
  s1 = list(GPP = c("GPP_raw", "GPP"), RS = c("Rs_raw", "Rs_topdown")),
  s2 = list(GPP = c("GPP_raw", "GPP2"), RS = c("Rs_raw", "Rs_topdown2")),
  s4 = list(GPP = c("GPP_raw_agg_group", "GPP4"), RS = c("Rs_raw_agg", "Rs_topdown4"))
)
QUANTILES <- c(0.025, 0.5, 0.975)

summarise_run <- function(res, label) {
  rows <- list()
  add <- function(variant, quantity, x) {
    q <- if (length(x) > 1) quantile(x, QUANTILES, names = FALSE) else c(NA, x, NA)
    rows[[length(rows) + 1]] <<- data.frame(
      r_variant = variant, quantity = quantity, median = q[2], ci_low = q[1], ci_high = q[3],
      mean = if (length(x) > 1) mean(x) else NA, sd = if (length(x) > 1) sd(x) else NA)
  }
  for (s in names(SCENARIOS)) {
    v <- paste0(label, "-", s)
    for (flux in c("GPP", "RS")) {
      tab <- if (flux == "GPP") res$gpp else res$rs
      direct <- tab[[SCENARIOS[[s]][[flux]][1]]]
      implied <- tab[[SCENARIOS[[s]][[flux]][2]]]
      add(v, paste0(flux, "_direct"), direct)
      add(v, paste0(flux, "_implied"), implied)
      add(v, paste0("p_agree_", flux), prob_agreement(implied, quantile(direct, QUANTILES)))
      # calc_overlap wants the lower distribution first (GPP: direct; RS: implied)
      direct_left <- mean(direct) < mean(implied)
      interval <- if (flux == "GPP") c(100, 150) else c(70, 90)
      ov <- if (direct_left) calc_overlap(direct, implied, interval) else calc_overlap(implied, direct, interval)
      side <- if (direct_left) c("left", "right") else c("right", "left")
      add(v, paste0("intersection_", flux), ov[["intersection"]])
      add(v, paste0("overlap_", flux, "_direct_share"), ov[[paste0(side[1], "_auc")]])
      add(v, paste0("overlap_", flux, "_implied_share"), ov[[paste0(side[2], "_auc")]])
      add(v, paste0("overlap_", flux, "_direct_normal"), ov[[paste0(side[1], "_normal")]])
      add(v, paste0("overlap_", flux, "_implied_normal"), ov[[paste0(side[2], "_normal")]])
    }
  }
  do.call(rbind, rows)
}

out <- rbind(
  summarise_run(bootstrap(method3, SEED), "rcode"),
  summarise_run(bootstrap(method3_resampled, SEED), "resampled"),
  data.frame(r_variant = "area", quantity = paste0("area_share_", IGBP_summary$IGBP_group),
             median = IGBP_summary$percent, ci_low = NA, ci_high = NA, mean = NA, sd = NA),
  data.frame(r_variant = "inputs", quantity = c("n_GPP", "n_RS", "n_NPP", "n_RC", "n_Froot", "n_RaGPP",
                                                 "n_GPP_period", "n_RS_period"),
             median = c(nrow(GPP), nrow(GlobalRs), nrow(NPP), nrow(var_RC), nrow(Froot), nrow(var_RaGpp),
                        nrow(GPP_agg_group), nrow(GlobalRs_agg)),
             ci_low = NA, ci_high = NA, mean = NA, sd = NA)
)
out$seed <- SEED
out$source <- "PNNL-TES/GlobalC@9d43778d"
write.csv(out, OUT_CSV, row.names = FALSE)
cat("wrote", OUT_CSV, "(", nrow(out), "rows )\n")
