"""Season-scheme comparison: same observations for every scheme, LOO table written."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from inference import compare_seasons
from models.arrhenius import ArrheniusConfig
from tpflux.seasons import common_observations

FAST = ["--dataset", "synthetic", "--chains", "2", "--draws", "60", "--tune", "10"]


def test_every_scheme_sees_the_same_observations(synthetic_sites):
    obs, _ = synthetic_sites
    prepared = common_observations(obs, ["julian", "freeze-thaw", "none"], ArrheniusConfig(min_obs=40)).prepared
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
    # every scheme with both residual models, by default
    assert sorted(zip(table["scheme"], table["residuals"])) == sorted(
        (s, r) for s in ("julian", "freeze-thaw", "none") for r in ("ar1", "iid"))
    assert {"elpd", "elpd_diff", "dse", "n_obs", "interpretation"} <= set(table.columns)
    assert table["elpd_diff"].min() <= 0 == table["elpd_diff"].max()
    diag = json.loads((out / "diagnostics.json").read_text())
    assert set(diag["models"]) == set(table["model"])
    assert diag["verdict"] in ("pass", "fail")
    assert diag["r_hat_max"] == max(d["r_hat_max"] for d in diag["models"].values())
    for name in ("season_comparison_by_class.csv", "season_comparison_left_out.csv"):
        assert (out / name).exists()
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
API = dict(schemes=("julian", "none"), residuals="ar1", chains=2, draws=40, tune=10, seed=7, target_accept=0.99,
           progress=False)
API_CLI = ["--schemes", "julian,none", "--residuals", "ar1", "--chains", "2", "--draws", "40", "--tune", "10", "--seed", "7",
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
    assert result.best == table.loc[table["elpd"].idxmax(), "model"]
    # the ranking is the fits' own PSIS-LOO: the pointwise log-likelihood is in every fit
    assert list(table["model"].sort_values()) == ["julian/ar1", "none/ar1"]
    for scheme, tree in result.fits.items():
        assert "log_likelihood" in tree.children
        n = tree["log_likelihood"]["ln_flux"].sizes["obs"]
        assert n == result.n_obs == table["n_obs"].iloc[0]
    pointwise = result.datatree["pointwise"]
    for model in ("julian/ar1", "none/ar1"):
        elpd = float(pointwise["elpd_loo"].sel(model=model).sum())
        assert elpd == pytest.approx(float(table.set_index("model").loc[model, "elpd"]), rel=1e-9)
    assert set(result.diagnostics["models"]) == {"julian/ar1", "none/ar1"}
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
    assert config.residual_models == ("ar1",)
    pd.testing.assert_frame_equal(back.by_class, result.by_class)
    pd.testing.assert_frame_equal(back.left_out, result.left_out)
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
    ("draws", 0), ("target_accept", 1.2), ("residuals", "ar2"), ("residuals", "ar1,ar1"), ("residuals", ","), ("likelihood", "cauchy"), ("min_obs", 0), ("seed", -3)])
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
    failing = {"julian/ar1": {"verdict": "pass"}, "none/iid": {"verdict": "fail"}}
    assert "--seasons none --residuals iid" in gate_advice(SeasonComparisonConfig(), failing)


# ---------------------------------------------------------------- honest comparison
def test_left_out_rows_are_every_row_outside_the_comparison_with_the_reason(synthetic_sites):
    from data.table import Observations

    obs, _ = synthetic_sites
    chambers = Observations(table=obs.table[~obs.table["method"].eq("eddy_covariance")].reset_index(drop=True),
                            dropped={"missing soil temperature": 7}, synthetic=True)
    common = common_observations(chambers, ["julian", "freeze-thaw"], ArrheniusConfig(min_obs=20))
    left = common.left_out
    # every row is either compared or listed, the reader's exclusions included
    assert common.n_obs + left["n_rows"].sum() == len(chambers.table) + 7
    assert left.set_index("flux_class").loc["(reader)", "n_rows"] == 7
    # a class freeze-thaw cannot fit is named with freeze-thaw's own reason
    for cls, scheme_data in (("wetland_emission", common.prepared["freeze-thaw"]),):
        reason = left.set_index("flux_class").loc[cls, "reason"]
        assert reason.startswith("not fitted under freeze-thaw: ") and "--min-obs" in reason
        assert cls not in scheme_data.classes
    kept = set(common.prepared["julian"].classes)
    assert kept.isdisjoint(set(left["flux_class"]) - {"(reader)"})
    assert kept == set(common.prepared["freeze-thaw"].classes)  # each class kept takes part in both


@pytest.mark.parametrize("diff, dse, words", [
    (0.0, 0.0, "best"), (-3.0, 0.5, "negligible"), (-10.0, 6.0, "not distinguishable"),
    (-30.0, 6.0, "worse than julian/ar1 by 5.0 SE")])
def test_each_elpd_difference_is_read_against_its_se(diff, dse, words):
    from tpflux.seasons import interpret

    model = "julian/ar1" if words == "best" else "none/iid"
    assert words in interpret(model, "julian/ar1", diff, dse)


def test_pointwise_elpd_lines_up_observation_by_observation(api_run):
    """Each scheme sorts its rows by its own groups; the pointwise ELPD of every model is put in
    one order (site, date) before differences are taken."""
    import arviz as az

    result, _ = api_run
    pointwise = result.datatree["pointwise"]
    common = pd.MultiIndex.from_arrays([pointwise["site"].to_numpy(), pd.to_datetime(pointwise["date"].to_numpy())])
    reordered = 0
    for model, tree in result.fits.items():
        const = tree["constant_data"]
        own = pd.MultiIndex.from_arrays([const["site"].to_numpy().astype(str), pd.to_datetime(const["date"].to_numpy())])
        elpd_own = np.asarray(az.loo(tree, pointwise=True).elpd_i).ravel()
        mapped = pd.Series(elpd_own, index=own).reindex(common).to_numpy()
        np.testing.assert_allclose(pointwise["elpd_loo"].sel(model=model).to_numpy(), mapped, rtol=1e-10)
        reordered += not own.equals(common)
    assert reordered, "the schemes listed their observations alike: the alignment was not exercised"


def test_class_rankings_add_up_to_the_overall_one(api_run):
    result, _ = api_run
    by_class = result.by_class
    assert set(by_class["flux_class"]) == set(result.datatree["pointwise"]["flux_class"].to_numpy())
    total = by_class.groupby("model")["elpd"].sum()
    overall = result.summary().set_index("model")["elpd"]
    np.testing.assert_allclose(total.reindex(overall.index), overall, rtol=1e-9)
    assert by_class.groupby("flux_class")["elpd_diff"].max().eq(0).all()  # each class has its best
    assert by_class["interpretation"].str.len().gt(0).all()


def test_ar1_terms_sum_to_the_joint_density_of_a_group(tmp_path, chamber_csv):
    """The AR(1) pointwise term of an observation is its density given the previous one, so a
    group's terms sum to the dense multivariate normal density of its residuals: AR(1) and iid
    models score the same observations."""
    from scipy import stats

    from models.arrhenius_loglik import observation_moments
    from tests.helpers import mock_sampling
    from tpflux.seasons import compare_seasons as api_compare

    with pytest.MonkeyPatch.context() as mp:
        mock_sampling(mp)
        result = api_compare(chamber_csv, **{**API, "residuals": ("ar1", "iid")})
    sizes = {m: t["log_likelihood"]["ln_flux"].sizes["obs"] for m, t in result.fits.items()}
    assert len(set(sizes.values())) == 1 and len(sizes) == 4
    tree = result.fits["julian/ar1"]
    const = tree["constant_data"].to_dataset()
    mu, sd = observation_moments(tree)
    ll = tree["log_likelihood"]["ln_flux"].to_numpy()
    y = tree["observed_data"]["ln_flux"].to_numpy()
    post = tree["posterior"]
    group = const["obs_group"].to_numpy()
    # a group of consecutive links (no break beyond the AR(1) horizon)
    linked = pd.Series(const["obs_previous"].to_numpy() >= 0).groupby(group).sum()
    sizes_g = pd.Series(group).value_counts()
    g = int(((sizes_g - linked).loc[lambda s: s == 1].index.intersection(sizes_g[sizes_g >= 5].index))[0])
    rows = np.flatnonzero(group == g)
    cls = str(const["obs_flux_class"].to_numpy()[rows[0]])
    days = (pd.to_datetime(const["date"].to_numpy()[rows]) - pd.Timestamp("2000-01-01")).days.to_numpy()
    w = const["weight"].to_numpy()[rows]
    for chain, draw in ((0, 0), (1, 7)):
        rho = float(post["rho"].sel(flux_class=cls).isel(chain=chain, draw=draw))
        sigma = float(post["sigma"].sel(flux_class=cls).isel(chain=chain, draw=draw))
        lag = np.abs(days[:, None] - days[None, :])
        cov = sigma ** 2 * np.sign(rho) ** lag * np.abs(rho) ** lag / np.sqrt(np.outer(w, w))
        dense = stats.multivariate_normal(mu[chain, draw, rows], cov).logpdf(y[rows])
        assert ll[chain, draw, rows].astype(float).sum() == pytest.approx(dense, rel=1e-4, abs=1e-3)
        assert np.allclose(sd[chain, draw, rows], sigma / np.sqrt(w))


def test_progress_line_per_model_and_left_out_printed(tmp_path, mock_pymc_sample, capsys, chamber_csv):
    out = tmp_path / "cmp"
    code = compare_seasons.main(["--data", str(chamber_csv), *FAST[2:], "--schemes", "julian,freeze-thaw",
                                 "--out", str(out), "--allow-unconverged"])
    assert code == 0
    captured = capsys.readouterr()
    for k, model in enumerate(["julian/ar1", "julian/iid", "freeze-thaw/ar1", "freeze-thaw/iid"], 1):
        assert f"model {k}/4: fitting {model}" in captured.err
        assert f"model {k}/4: {model} fitted and scored in" in captured.err
    left = pd.read_csv(out / "season_comparison_left_out.csv")
    assert len(left) and "Left out of the comparison:" in captured.out
    for r in left.itertuples():
        assert f"left out: {r.flux_class} {r.n_rows} rows: {r.reason}" in captured.err
        assert r.reason in captured.out
    assert "AR(1) and iid residuals score the same" in captured.out


def test_report_of_a_comparison_folder(api_run, tmp_path, monkeypatch):
    import shutil

    from reports import build

    _, folder = api_run
    copy = tmp_path / "cmp"
    shutil.copytree(folder, copy)
    monkeypatch.setattr(build, "FIGURE_DPI", 60)
    assert build.main([str(copy)]) == 0
    shown = pd.read_csv(copy / "tables" / "season_comparison.csv")
    saved = pd.read_csv(copy / "season_comparison.csv")
    np.testing.assert_allclose(shown["elpd"], saved["elpd"])
    for name in ("season_comparison_by_class", "season_comparison_left_out"):
        assert (copy / "tables" / f"{name}.md").stat().st_size > 0
    assert (copy / "figures" / "elpd_difference.png").stat().st_size > 1000
    html = (copy / "report.html").read_text(encoding="utf-8")
    assert "PSIS-LOO" in html and saved["interpretation"].iloc[-1].split(":")[0] in html
    assert (copy / "methods.tex").read_text(encoding="utf-8").isascii()
