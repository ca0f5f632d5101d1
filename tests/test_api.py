"""The Python API: ``import tpflux`` anywhere, fit objects, save → load → refit, CLI = API."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import tpflux
from data.errors import DataError
from tests.helpers import REPO, subprocess_env

FAST = dict(dataset="synthetic", chains=2, draws=30, tune=30, ppc_draws=5, seed=5)


def test_public_surface_is_curated():
    expected = {"load_observations", "fit_ea", "fit_rr", "project", "budget", "compare_seasons",
                "load", "build_report", "__version__"}
    assert expected <= set(tpflux.__all__)
    for name in tpflux.__all__:
        assert hasattr(tpflux, name), name
    assert tpflux.__version__ and tpflux.__version__[0].isdigit()


def test_import_works_from_a_folder_with_its_own_data_models_and_reports(tmp_path):
    """A user's project with its own ``data``, ``models`` and ``reports`` packages must not shadow
    the suite's, and importing must not pick a matplotlib backend."""
    for name in ("data", "models", "reports"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("MINE = True\n")
    script = textwrap.dedent("""
        import matplotlib
        matplotlib.use("svg")
        import tpflux
        import data.registry, models.arrhenius
        assert not hasattr(data, "MINE"), data.__file__
        obs = tpflux.load_observations(dataset="synthetic")
        assert len(obs.table) > 1000
        assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
        print("ok")
    """)
    env = {k: v for k, v in subprocess_env().items() if k not in ("PYTHONPATH", "MPLBACKEND")}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok"


@pytest.fixture(scope="module")
def mock_fit(tmp_path_factory):
    """One fit_ea with NUTS replaced by prior draws, saved once."""
    with pytest.MonkeyPatch.context() as mp:
        from tests.helpers import mock_sampling

        mock_sampling(mp)
        fit = tpflux.fit_ea(**FAST, progress=False)
        folder = fit.save(tmp_path_factory.mktemp("api") / "run")
    return fit, folder


def test_fit_object_holds_the_run(mock_fit):
    fit, _ = mock_fit
    assert isinstance(fit, tpflux.ActivationEnergyFit)
    assert isinstance(fit.datatree, xr.DataTree) and "posterior" in fit.datatree.children
    summary = fit.summary()
    assert {"E", "lnR", "E_site", "dE", "sigma"} <= set(summary["quantity"])
    # summary() is a copy: changing it leaves the fit alone.
    summary.loc[:, "mean"] = 0.0
    assert not (fit.summary()["mean"] == 0).all()
    assert fit.diagnostics["verdict"] in ("pass", "fail")
    assert dataclasses.is_dataclass(fit.config)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fit.config.draws = 5
    assert "Activation energy E (eV)" in fit.result_text() and "SYNTHETIC" in fit.result_text()
    # The summary's numbers are the DataTree's numbers.
    row = summary[(summary["quantity"] == "E") & (summary["flux_class"] == "wetland_emission")
                  & (summary["season"] == "growing")].iloc[0]
    draws = fit.datatree["posterior"]["E"].sel(flux_class="wetland_emission", season="growing")
    assert row["median"] == pytest.approx(float(np.median(draws.to_numpy())))


def test_save_then_load_gives_the_same_fit(mock_fit):
    fit, folder = mock_fit
    back = tpflux.load(folder)
    assert type(back) is tpflux.ActivationEnergyFit
    pd.testing.assert_frame_equal(back.summary(), fit.summary())
    assert back.config == fit.config
    assert back.diagnostics == json.loads((folder / "diagnostics.json").read_text())
    np.testing.assert_array_equal(back.datatree["posterior"]["E"].to_numpy(),
                                  fit.datatree["posterior"]["E"].to_numpy())
    # Every file of the run carries the same run id.
    marker = json.loads((folder / "run.json").read_text())
    assert marker == {"job": "fit_ea", "run_id": back.datatree.attrs["run_id"]}


def test_config_round_trips_through_the_attrs_and_refits_identically(mock_fit, monkeypatch):
    from tests.helpers import mock_sampling

    fit, folder = mock_fit
    attrs = tpflux.load(folder).datatree.attrs
    config = tpflux.ActivationEnergyConfig.from_attrs(attrs)
    assert config == fit.config
    mock_sampling(monkeypatch)
    again = tpflux.load(folder).refit()
    for name in ("E", "lnR", "E_site", "sigma", "tau_E"):
        np.testing.assert_array_equal(again.datatree["posterior"][name].to_numpy(),
                                      fit.datatree["posterior"][name].to_numpy())
    pd.testing.assert_frame_equal(again.summary(), fit.summary())
    other = fit.refit(seed=6)
    assert not np.array_equal(other.datatree["posterior"]["E"].to_numpy(),
                              fit.datatree["posterior"]["E"].to_numpy())


def test_cli_and_api_write_identical_runs(mock_fit, tmp_path, monkeypatch):
    from inference import fit_ea
    from tests.helpers import mock_sampling

    fit, folder = mock_fit
    mock_sampling(monkeypatch)
    out = tmp_path / "cli"
    code = fit_ea.main(["--dataset", "synthetic", "--chains", "2", "--draws", "30", "--tune", "30",
                        "--ppc-draws", "5", "--seed", "5", "--out", str(out), "--allow-unconverged"])
    assert code == 0
    assert (out / "ea_summary.csv").read_bytes() == (folder / "ea_summary.csv").read_bytes()
    cli = tpflux.load(out)
    for group in ("posterior", "prior", "posterior_predictive", "constant_data"):
        xr.testing.assert_equal(cli.datatree[group].to_dataset(), fit.datatree[group].to_dataset())
    assert cli.config == fit.config
    assert json.loads(cli.datatree.attrs["tpflux_config"]) == json.loads(fit.datatree.attrs["tpflux_config"])
    assert cli.datatree.attrs["command_line"].startswith("python -m inference.fit_ea --dataset synthetic")


def test_an_in_memory_table_fits_and_refuses_refit_without_it(mock_fit, monkeypatch):
    from tests.helpers import mock_sampling

    mock_sampling(monkeypatch)
    obs = tpflux.load_observations(dataset="synthetic", seed=5)
    fit = tpflux.fit_ea(obs.table, **{k: v for k, v in FAST.items() if k != "dataset"}, progress=False)
    assert fit.config.dataset is None and fit.config.data is None
    pd.testing.assert_frame_equal(fit.summary().drop(columns=["ess_bulk", "ess_tail", "r_hat"]),
                                  mock_fit[0].summary().drop(columns=["ess_bulk", "ess_tail", "r_hat"]))
    with pytest.raises(DataError, match="in-memory table"):
        fit.refit()


@pytest.mark.parametrize("option, value", [
    ("chains", 0), ("chains", -2), ("draws", 0), ("tune", -1), ("ppc_draws", 0),
    ("target_accept", 1.5), ("t_ref_c", -300.0), ("min_obs", -5), ("seed", 10**23),
    ("seasons", "monsoon"), ("likelihood", "cauchy"), ("chains", 2.5)])
def test_bad_options_are_refused_before_any_data_is_read(option, value, monkeypatch):
    import tpflux.io

    monkeypatch.setattr(tpflux.io, "load_observations",
                        lambda *a, **k: pytest.fail("data were read before the options were checked"))
    with pytest.raises(DataError) as info:
        tpflux.fit_ea(**{**FAST, option: value})
    assert f"--{option.replace('_', '-')}" in str(info.value)


def test_cli_bad_option_exits_2_writing_nothing(tmp_path, capsys):
    from inference import fit_ea

    out = tmp_path / "never"
    assert fit_ea.main(["--dataset", "synthetic", "--chains", "0", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "--chains" in err[0]
    assert not out.exists()


def test_gate_advice_never_suggests_the_setting_in_use():
    from tpflux.activation import ActivationEnergyConfig, gate_advice

    assert "--likelihood normal" not in gate_advice(ActivationEnergyConfig())
    assert "--likelihood normal" in gate_advice(ActivationEnergyConfig(likelihood="student"))
    assert "--target-accept 0.99" not in gate_advice(ActivationEnergyConfig(target_accept=0.99))


def test_plot_methods_return_figures_without_drawing(mock_fit):
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    fit, _ = mock_fit
    before = plt.get_fignums()
    for make in (fit.plot_temperature_response, fit.plot_arrhenius, fit.plot_season_difference,
                 fit.plot_rank):
        fig = make()
        assert isinstance(fig, Figure), make.__name__
        axes = [ax for ax in fig.axes if ax.has_data()]
        assert axes and any(ax.get_xlabel() for ax in axes) and any(ax.get_ylabel() for ax in axes)
    assert plt.get_fignums() == before  # nothing registered with pyplot, nothing shown


def test_load_refuses_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(DataError, match="run folder does not exist"):
        tpflux.load(tmp_path / "nope")
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(DataError):
        tpflux.load(tmp_path)


@pytest.mark.slow
def test_cli_and_api_give_identical_posteriors_with_real_sampling(tmp_path):
    """The issue's check, with NUTS: API in this process, CLI in another, same seed."""
    fit = tpflux.fit_ea(dataset="synthetic", chains=2, draws=300, tune=300, seed=5, progress=False)
    fit.save(tmp_path / "run")
    pd.testing.assert_frame_equal(tpflux.load(tmp_path / "run").summary(), fit.summary())
    done = subprocess.run([sys.executable, "-m", "inference.fit_ea", "--dataset", "synthetic",
                           "--chains", "2", "--draws", "300", "--tune", "300", "--seed", "5",
                           "--out", str(tmp_path / "cli"), "--allow-unconverged"],
                          cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "cli" / "ea_summary.csv").read_bytes() == (tmp_path / "run" / "ea_summary.csv").read_bytes()


@pytest.mark.parametrize("likelihood", ["normal", "student"])
def test_log_likelihood_is_not_stored_by_default_and_computes_as_stored(likelihood, monkeypatch):
    """A default run keeps no pointwise log-likelihood; computed from the saved posterior and
    observations it equals the one the model code stores with save_log_likelihood."""
    from models.arrhenius_loglik import pointwise_log_likelihood
    from tests.helpers import mock_sampling

    mock_sampling(monkeypatch)
    options = {**FAST, "likelihood": likelihood}
    default = tpflux.fit_ea(**options, progress=False)
    assert "log_likelihood" not in default.datatree.children
    kept = tpflux.fit_ea(**options, save_log_likelihood=True, progress=False)
    stored = kept.datatree["log_likelihood"]["ln_flux"]
    without = kept.datatree.copy()
    del without["log_likelihood"]
    computed = pointwise_log_likelihood(without)
    assert computed.shape == stored.shape
    np.testing.assert_allclose(computed.to_numpy(), stored.to_numpy(), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(default.log_likelihood().to_numpy(), stored.to_numpy(), rtol=1e-5, atol=1e-4)
    assert np.isfinite(default.loo().elpd)


def test_a_run_saved_before_autocorrelated_residuals_reloads_as_independent():
    from tpflux.activation import ActivationEnergyConfig

    old = ActivationEnergyConfig().to_dict()
    old.pop("residuals")  # run records older than the AR(1) option do not name it
    assert ActivationEnergyConfig.from_dict(old).residuals == "iid"
    assert ActivationEnergyConfig.from_dict(ActivationEnergyConfig().to_dict()).residuals == "ar1"
