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
                  "observed_data", "constant_data", "log_likelihood"):
        assert group in dt.children, group
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
    ll = dt["log_likelihood"]["ln_flux"]
    assert ll.shape[-1] == dt["observed_data"]["ln_flux"].shape[0]
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
