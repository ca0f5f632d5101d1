"""One interval convention for every table, figure and summary: 95 % equal-tailed."""

CI_PROB = 0.95
CI_KIND = "eti"
CI_QUANTILES = ((1 - CI_PROB) / 2, 0.5, 1 - (1 - CI_PROB) / 2)
CI_LABEL = "95 % equal-tailed interval"
