"""Season-scheme comparison: same observations for every scheme, LOO table written."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from inference import compare_seasons
from models.arrhenius import ArrheniusConfig
from tpflux.seasons import common_observations

FAST = ["--dataset", "synthetic", "--chains", "2", "--draws", "60", "--tune", "10"]


def test_every_scheme_sees_the_same_observations(synthetic_sites):
    obs, _ = synthetic_sites
    prepared = common_observations(obs, ["julian", "freeze-thaw", "none"], ArrheniusConfig(min_obs=40))
    keys = [set(map(tuple, d.obs[["site", "date"]].astype(str).to_numpy())) for d in prepared.values()]
    assert keys[0] == keys[1] == keys[2]
    assert [len(d.seasons) for d in prepared.values()] == [2, 4, 1]


def test_comparison_table(tmp_path, mock_pymc_sample, capsys, chamber_csv):
    out = tmp_path / "cmp"
    args = ["--data", str(chamber_csv), *FAST[2:]]
    code = compare_seasons.main([*args, "--out", str(out), "--allow-unconverged"])
    assert code == 0
    table = pd.read_csv(out / "season_comparison.csv")
    assert set(table["scheme"]) == {"julian", "freeze-thaw", "none"}
    assert {"elpd", "elpd_diff", "dse", "n_obs"} <= set(table.columns)
    assert table["elpd_diff"].min() <= 0 == table["elpd_diff"].max()
    diag = json.loads((out / "diagnostics.json").read_text())
    assert set(diag["schemes"]) == {"julian", "freeze-thaw", "none"}
    assert diag["verdict"] in ("pass", "fail")
    assert diag["r_hat_max"] == max(d["r_hat_max"] for d in diag["schemes"].values())
    assert json.loads((out / "run.json").read_text())["job"] == "compare_seasons"
    assert "PSIS-LOO comparison on" in capsys.readouterr().out

    # A second run into the same folder is refused unless asked to replace it.
    assert compare_seasons.main([*args, "--out", str(out), "--allow-unconverged"]) == 2
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize("schemes, words", [
    (",", "no season schemes"), ("julian", "needs two or more"), ("julian,monsoon", "monsoon"),
    ("julian,none,julian", "more than once")])
def test_bad_schemes_exit_2_before_any_work(tmp_path, capsys, monkeypatch, schemes, words):
    import tpflux.io

    monkeypatch.setattr(tpflux.io, "load_observations",
                        lambda *a, **k: pytest.fail("data were read before the options were checked"))
    out = tmp_path / "run"
    assert compare_seasons.main([*FAST, "--schemes", schemes, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "--schemes" in err[0] and words in err[0]
    assert not out.exists() and not any(tmp_path.iterdir())


# ---------------------------------------------------------------- Python API
API = dict(schemes=("julian", "none"), chains=2, draws=40, tune=10, seed=7, target_accept=0.99,
           progress=False)
API_CLI = ["--schemes", "julian,none", "--chains", "2", "--draws", "40", "--tune", "10", "--seed", "7",
           "--target-accept", "0.99"]


@pytest.fixture(scope="module")
def chamber_csv(tmp_path_factory, synthetic_sites):
    """The simulator's chamber sites as a chamber CSV: small enough for quick PSIS-LOO."""
    obs, _ = synthetic_sites
    table = obs.table[~obs.table["method"].eq("eddy_covariance")]
    path = tmp_path_factory.mktemp("data") / "chambers.csv"
    table.assign(flux_unit="nmol CH4 m-2 s-1", date=table["date"].dt.strftime("%Y-%m-%d"))[
        ["site", "date", "days", "flux", "flux_unit", "soil_temp_c", "ecosystem", "method",
         "latitude", "longitude", "n_sub"]].to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def api_run(tmp_path_factory, chamber_csv):
    from tests.helpers import mock_sampling
    from tpflux.seasons import compare_seasons as api_compare

    with pytest.MonkeyPatch.context() as mp:
        mock_sampling(mp)
        result = api_compare(chamber_csv, **API)
    return result, result.save(tmp_path_factory.mktemp("api") / "run")


def test_api_result_holds_the_comparison(api_run):
    from tpflux.seasons import SeasonComparison

    result, _ = api_run
    assert isinstance(result, SeasonComparison)
    table = result.summary()
    assert list(table["scheme"].sort_values()) == ["julian", "none"]
    assert result.best == table.loc[table["elpd"].idxmax(), "scheme"]
    # the ranking is the fits' own PSIS-LOO: the pointwise log-likelihood is in every fit
    for scheme, tree in result.fits.items():
        assert "log_likelihood" in tree.children
        n = tree["log_likelihood"]["ln_flux"].sizes["obs"]
        assert n == result.n_obs == table["n_obs"].iloc[0]
    pointwise = result.datatree["pointwise"]
    for scheme in ("julian", "none"):
        elpd = float(pointwise["elpd_loo"].sel(scheme=scheme).sum())
        assert elpd == pytest.approx(float(table.set_index("scheme").loc[scheme, "elpd"]), rel=1e-9)
    assert set(result.diagnostics["schemes"]) == {"julian", "none"}
    assert f"PSIS-LOO comparison on {result.n_obs} common observations" in result.result_text()
    assert result.config.dataset is None and result.config.data.endswith("chambers.csv")


def test_save_then_load_and_rerun_from_the_attrs(api_run, monkeypatch):
    import tpflux
    from tests.helpers import mock_sampling
    from tpflux.seasons import SeasonComparison, SeasonComparisonConfig

    result, folder = api_run
    back = tpflux.load(folder)
    assert type(back) is SeasonComparison
    pd.testing.assert_frame_equal(back.summary(), result.summary())
    assert back.diagnostics == json.loads((folder / "diagnostics.json").read_text())
    config = SeasonComparisonConfig.from_attrs(back.datatree.attrs)
    assert config == result.config and config.schemes == ("julian", "none")
    mock_sampling(monkeypatch)
    again = back.rerun()
    pd.testing.assert_frame_equal(again.summary(), result.summary())


def test_cli_and_api_give_identical_tables(api_run, chamber_csv, tmp_path, mock_pymc_sample, capsys):
    result, folder = api_run
    out = tmp_path / "cli"
    out.mkdir()
    (out / "run.json").write_text('{"job": "compare_seasons", "run_id": "previous"}')
    (out / "stale.csv").write_text("a\n1\n")
    # 2 × 40 prior draws cannot reach a bulk ESS of 400: the gate fails, the outputs are kept
    code = compare_seasons.main(["--data", str(chamber_csv), *API_CLI, "--out", str(out), "--overwrite"])
    assert code == 3
    assert not (out / "stale.csv").exists()  # the previous run was replaced as a whole
    assert (out / "season_comparison.csv").read_bytes() == (folder / "season_comparison.csv").read_bytes()
    diag = json.loads((out / "diagnostics.json").read_text())
    assert diag == json.loads((folder / "diagnostics.json").read_text()) and diag["verdict"] == "fail"
    err = capsys.readouterr().err
    assert "FAIL" in err and "more --tune/--draws" in err
    assert "--target-accept 0.99" not in err.split("Try:")[1]  # the setting already in use


@pytest.mark.parametrize("option, value", [
    ("schemes", ","), ("schemes", ()), ("schemes", ("julian", "julian")), ("chains", 0),
    ("draws", 0), ("target_accept", 1.2), ("likelihood", "cauchy"), ("min_obs", 0), ("seed", -3)])
def test_api_bad_options_are_refused_before_any_data_is_read(option, value, monkeypatch, chamber_csv):
    import tpflux.io
    from data.errors import DataError
    from tpflux.seasons import compare_seasons as api_compare

    monkeypatch.setattr(tpflux.io, "load_observations",
                        lambda *a, **k: pytest.fail("data were read before the options were checked"))
    with pytest.raises(DataError) as info:
        api_compare(chamber_csv, **{**API, option: value})
    assert f"--{option.replace('_', '-')}" in str(info.value)


def test_gate_advice_never_suggests_the_setting_in_use():
    from tpflux.seasons import SeasonComparisonConfig, gate_advice

    assert "--target-accept 0.99" in gate_advice(SeasonComparisonConfig())
    assert "--target-accept" not in gate_advice(SeasonComparisonConfig(target_accept=0.99))
    assert "--likelihood" not in gate_advice(SeasonComparisonConfig())
    assert "--likelihood normal" in gate_advice(SeasonComparisonConfig(likelihood="student"))
    failing = {"julian": {"verdict": "pass"}, "none": {"verdict": "fail"}}
    assert "--seasons none" in gate_advice(SeasonComparisonConfig(), failing)
