"""Season-scheme comparison: same observations for every scheme, LOO table written."""

from __future__ import annotations

import pandas as pd

from inference import compare_seasons
from models.arrhenius import ArrheniusConfig


def test_every_scheme_sees_the_same_observations(synthetic_sites):
    obs, _ = synthetic_sites
    prepared = compare_seasons.common_observations(obs, ["julian", "freeze-thaw", "none"],
                                                   ArrheniusConfig(min_obs=40))
    keys = [set(map(tuple, d.obs[["site", "date"]].astype(str).to_numpy())) for d in prepared.values()]
    assert keys[0] == keys[1] == keys[2]
    assert [len(d.seasons) for d in prepared.values()] == [2, 4, 1]


def test_comparison_table(tmp_path, mock_pymc_sample):
    out = tmp_path / "cmp"
    code = compare_seasons.main(["--dataset", "synthetic", "--out", str(out), "--chains", "2",
                                 "--draws", "60", "--allow-unconverged"])
    assert code == 0
    table = pd.read_csv(out / "season_comparison.csv")
    assert set(table["scheme"]) == {"julian", "freeze-thaw", "none"}
    assert {"elpd", "elpd_diff", "dse", "n_obs"} <= set(table.columns)
    assert table["elpd_diff"].min() <= 0 == table["elpd_diff"].max()
