"""The fit_ea job end to end: outputs, attrs, summary contract, exit codes, determinism."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from inference import fit_ea, runio
from tests.helpers import mock_sample_stats, mock_sampling

CONTRACT_COLUMNS = ["quantity", "flux_class", "season", "site", "mean", "sd", "median", "ci_low",
                    "ci_high", "ess_bulk", "ess_tail", "r_hat"]


def _run(tmp_path, *extra):
    out = tmp_path / "run"
    code = fit_ea.main(["--dataset", "synthetic", "--out", str(out), "--seed", "3", *extra])
    return code, out


def test_outputs_follow_the_contract(tmp_path, mock_pymc_sample):
    code, out = _run(tmp_path, "--chains", "2", "--draws", "40", "--ppc-draws", "10", "--allow-unconverged")
    assert code == runio.EXIT_OK
    summary = pd.read_csv(out / "ea_summary.csv")
    assert all(c in summary.columns for c in CONTRACT_COLUMNS)
    quantities = set(summary["quantity"])
    assert {"E", "lnR", "E_site", "dE", "P_dE_gt_0", "Q10", "sigma", "E_site_mean", "E_pooled_ols"} <= quantities
    e_site = summary[summary["quantity"] == "E_site"]
    assert e_site["site"].str.startswith("SYN-").all() and e_site["season"].notna().all()
    dt = xr.open_datatree(out / "ea_posterior.nc", engine="h5netcdf")
    for group in ("posterior", "sample_stats", "prior", "prior_predictive", "posterior_predictive",
                  "observed_data", "constant_data"):
        assert group in dt.children, group
    # Not stored by default (computed on demand: tests/test_api.py).
    assert "log_likelihood" not in dt.children
    config = json.loads(dt.attrs["tpflux_config"])
    assert config["synthetic"] is True and config["season_scheme"] == "julian"
    assert len(dt.attrs["data_sha256"]) == 64 and int(dt.attrs["seed"]) == 3
    assert "pymc" in json.loads(dt.attrs["package_versions"])
    # Summary numbers are the DataTree's numbers.
    post = dt["posterior"].to_dataset()
    row = summary[(summary["quantity"] == "E") & (summary["flux_class"] == "wetland_emission")
                  & (summary["season"] == "growing")].iloc[0]
    draws = post["E"].sel(flux_class="wetland_emission", season="growing").to_numpy().ravel()
    assert row["median"] == pytest.approx(np.median(draws))
    assert row["ci_low"] == pytest.approx(np.quantile(draws, 0.025))
    diag = json.loads((out / "diagnostics.json").read_text())
    assert diag["verdict"] in ("pass", "fail") and "r_hat_max" in diag


def test_unconverged_run_exits_3_and_keeps_outputs(tmp_path, monkeypatch):
    # Sampling replaced by prior draws with divergent transitions: the exit code is under test.
    mock_sampling(monkeypatch, stats={**mock_sample_stats(),
                                      "diverging": lambda size: np.ones(size, dtype=bool)})
    code, out = _run(tmp_path, "--chains", "2", "--draws", "15", "--tune", "15", "--ppc-draws", "5")
    assert code == runio.EXIT_GATE
    diag = json.loads((out / "diagnostics.json").read_text())
    assert diag["verdict"] == "fail" and "30 divergent transitions" in diag["failed"]
    assert (out / "ea_posterior.nc").exists() and (out / "ea_summary.csv").exists()


def test_converged_run_exits_0_and_same_seed_same_result(tmp_path):
    # 2 × 1000 draws: with 2 × 500 the largest R-hat over the ~100 gated quantities lands near the
    # 1.01 gate by chance alone (1.0098 at target_accept 0.8, 1.0146 at 0.95, same seed).
    args = ("--chains", "2", "--draws", "1000", "--tune", "500", "--ppc-draws", "10")
    code, out = _run(tmp_path, *args)
    assert code == runio.EXIT_OK
    assert json.loads((out / "diagnostics.json").read_text())["verdict"] == "pass"
    again = tmp_path / "again"
    assert fit_ea.main(["--dataset", "synthetic", "--out", str(again), "--seed", "3", *args]) == 0
    a = xr.open_datatree(out / "ea_posterior.nc", engine="h5netcdf")["posterior"]
    b = xr.open_datatree(again / "ea_posterior.nc", engine="h5netcdf")["posterior"]
    for name in ("E", "eps_E", "E_site", "sigma"):
        np.testing.assert_array_equal(a[name].to_numpy(), b[name].to_numpy())


def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("site,date,flux\nA,2020-01-01,1.0\n")
    out = tmp_path / "never"
    code = fit_ea.main(["--data", str(bad), "--out", str(out)])
    assert code == runio.EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {bad}:") and "Traceback" not in err[0]
    assert not out.exists()


def test_missing_sampler_is_a_clear_error(tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "numpyro" else real(name, *a))
    code = fit_ea.main(["--dataset", "synthetic", "--sampler", "numpyro", "--out", str(tmp_path / "x")])
    assert code == runio.EXIT_BAD_INPUT
    assert "numpyro" in capsys.readouterr().err


def test_gate_thresholds():
    ok = {"verdict": "pass", "r_hat_max": 1.0, "ess_bulk_min": 500, "ess_tail_min": 500, "divergences": 0}
    assert runio.gate_exit(ok, False, "") == runio.EXIT_OK
    bad = {**ok, "verdict": "fail", "failed": ["R-hat 1.05 > 1.01"]}
    assert runio.gate_exit(bad, False, "") == runio.EXIT_GATE
    assert runio.gate_exit(bad, True, "") == runio.EXIT_OK


# ---------------------------------------------------------------- site names are data
ODD_SITES = {"SYN-EC01": "HY|1", "SYN-EC04": "#2 Zoige", "SYN-AC01": 'Maqu, "east"|b',
             "SYN-SC01": "plot|wetland_emission|growing"}


@pytest.fixture(scope="module")
def odd_site_run(tmp_path_factory):
    """A fit (mock sampling) on a chamber CSV whose site names hold '|', a leading '#', a comma
    and quotes; the report is built from it."""
    from data.synthetic import simulate_observations
    from reports import build

    base = tmp_path_factory.mktemp("odd_sites")
    table = simulate_observations(0)[0].table
    sub = pd.concat([table[table["site"] == site].iloc[::3] for site in ODD_SITES])
    sub = sub.assign(site=sub["site"].map(ODD_SITES), flux_unit="nmol m-2 s-1",
                     date=sub["date"].dt.strftime("%Y-%m-%d"))
    sub.to_csv(base / "chambers.csv", index=False)
    out = base / "run"
    with pytest.MonkeyPatch.context() as mp:
        mock_sampling(mp, energy=True)
        code = fit_ea.main(["--data", str(base / "chambers.csv"), "--out", str(out), "--seed", "3",
                            "--chains", "2", "--draws", "30", "--ppc-draws", "5", "--min-obs", "10",
                            "--allow-unconverged"])
        assert code == runio.EXIT_OK
        with mp.context() as inner:
            inner.setattr(build, "FIGURE_DPI", 40)
            built = build.main([str(out)])
    return sub, out, built


def test_site_names_with_separator_hash_and_comma_are_kept_whole(odd_site_run):
    sub, out, _ = odd_site_run
    summary = pd.read_csv(out / "ea_summary.csv")
    e_site = summary[summary["quantity"] == "E_site"]
    assert set(e_site["site"]) == set(ODD_SITES.values())  # no row dropped as a comment
    assert set(e_site["flux_class"]) <= {"wetland_emission", "wetland_uptake"}
    assert set(e_site["season"]) <= {"growing", "non-growing"}
    # every E_site row is the posterior's number of that very site, class and season
    dt = xr.open_datatree(out / "ea_posterior.nc", engine="h5netcdf")
    post = dt["posterior"].to_dataset()
    parts = post[["group_site", "group_flux_class", "group_season"]].to_dataframe()
    for row in e_site.itertuples():
        match = parts[(parts["group_site"] == row.site) & (parts["group_flux_class"] == row.flux_class)
                      & (parts["group_season"] == row.season)]
        assert len(match) == 1, row
        draws = post["E_site"].sel(group=match.index[0]).to_numpy().ravel()
        assert row.median == pytest.approx(np.median(draws))
    n_obs = dt["constant_data"]["site"].to_series().value_counts()
    assert n_obs.sum() == len(sub)


def test_report_builds_on_a_run_with_odd_site_names(odd_site_run):
    _, out, built = odd_site_run
    assert built == runio.EXIT_OK
    assert (out / "report.html").stat().st_size > 10_000
    site_table = pd.read_csv(out / "tables" / "site_activation_energy.csv")
    assert set(site_table["site"]) == set(ODD_SITES.values())
    assert set(site_table["season"]) <= {"growing", "non-growing"}


def test_group_parts_come_from_coordinates_never_from_splitting_the_label():
    from models.arrhenius_config import add_group_columns, group_coords, group_parts

    groups = pd.DataFrame({"site": ["a|b", "#c"], "flux_class": ["wetland_emission"] * 2,
                           "season": ["growing", "non-growing"]})
    groups["label"] = groups["site"] + "|" + groups["flux_class"] + "|" + groups["season"]
    ds = xr.Dataset({"E_site": (("group",), [0.5, 0.7])}, coords=group_coords(groups))
    parts = group_parts(ds)
    assert parts.loc["a|b|wetland_emission|growing"].tolist() == ["a|b", "wetland_emission", "growing"]
    table = pd.DataFrame({"quantity": ["E_site", "E_site", "E"], "group": [*groups["label"], None],
                          "flux_class": [None, None, "wetland_emission"]})
    out = add_group_columns(table, parts)
    assert out["site"].tolist()[:2] == ["a|b", "#c"] and "group" not in out
    assert out["flux_class"].tolist() == ["wetland_emission"] * 3
    # a run saved without the coordinates: from its constant_data, else split from the right
    bare = xr.Dataset({"E_site": (("group",), [0.5, 0.7])}, coords={"group": groups["label"].to_numpy()})
    cd = xr.Dataset({"obs_group": ("obs", [1, 0, 0]), "site": ("obs", ["#c", "a|b", "a|b"]),
                     "obs_flux_class": ("obs", ["wetland_emission"] * 3),
                     "obs_season": ("obs", ["non-growing", "growing", "growing"])})
    tree = xr.DataTree.from_dict({"/posterior": bare, "/constant_data": cd})
    assert group_parts(bare, tree).equals(parts)
    assert group_parts(bare).equals(parts)


def test_gate_read_from_the_summary_equals_the_gate_computed_afresh(mock_pymc_sample):
    """The fit's gate reuses the summary's R-hat and ESS; they are the figures diagnose computes."""
    from inference import ea_fitting
    from models.summary import diagnose
    from tests.helpers import small_fit_ea

    fit = small_fit_ea(chains=2)
    gated = ea_fitting.GATED_VARIABLES
    fresh = diagnose(fit.datatree, gated)
    for key in ("r_hat_max", "ess_bulk_min", "ess_tail_min"):
        assert fit.diagnostics[key] == pytest.approx(fresh[key], rel=1e-12), key
    assert fit.diagnostics["verdict"] == fresh["verdict"]
    # a summary that lacks a gated variable is not used
    partial = fit.table[fit.table["quantity"] != "E_site"].assign(ess_bulk=1e9)
    assert diagnose(fit.datatree, gated, summary=partial)["ess_bulk_min"] == fresh["ess_bulk_min"]
