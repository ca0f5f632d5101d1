"""Jobs that never lie about their outputs: the budget's Bayesian model passes its own gate, sizes
that cannot fit in memory or on the disk are refused before any work, and a report of a run
folder is written as a whole or not at all (a malformed folder is one ``error:`` line, exit 2).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from data import storage
from data.errors import DataError
from models import budget as mb
from tests.shared_data import require_data

EXIT_BAD_INPUT = 2


def _one_error_line(capsys, *, progress: bool = False) -> str:
    """The one ``error:`` line on stderr; with ``progress``, after the job's progress lines."""
    err = capsys.readouterr().err.strip().splitlines()
    if progress:
        assert all(line.startswith("[") for line in err[:-1]), err
        err = err[-1:]
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.fixture
def no_work(monkeypatch):
    """Loading the budget inputs or sampling fails the test: a refusal must come before either."""
    import pymc as pm

    import data.jian2022

    monkeypatch.setattr(pm, "sample", lambda *a, **kw: pytest.fail("sampled"))
    monkeypatch.setattr(data.jian2022, "load_budget_inputs", lambda *a, **kw: pytest.fail("data loaded"))


# ---------------------------------------------------------------- the budget's pooling model
def test_integrated_group_means_give_the_hierarchical_marginal_likelihood():
    """The closed form equals the multivariate Normal with covariance diag(v) + τ²·11ᵀ per group,
    and the drawn group means have the exact Normal conditional."""
    import pytensor

    rng = np.random.default_rng(4)
    group = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 3])
    y = rng.normal(100, 15, group.size)
    var = rng.uniform(20, 300, group.size)
    for mu, tau in ((110.0, 12.0), (95.0, 0.3), (120.0, 60.0)):
        logp, mean, sd = mb.marginal_group_loglik(y, var, group, 4, mu, tau)
        logp, mean, sd = pytensor.function([], [logp, mean, sd], mode="FAST_COMPILE")()
        expected = sum(stats.multivariate_normal(np.full((group == g).sum(), mu),
                                                 np.diag(var[group == g]) + tau**2).logpdf(y[group == g])
                       for g in range(4))
        assert float(logp) == pytest.approx(expected, rel=1e-10)
        for g in range(4):
            precision = 1 / tau**2 + np.sum(1 / var[group == g])
            assert sd[g] == pytest.approx(precision**-0.5, rel=1e-10)
            assert mean[g] == pytest.approx((mu / tau**2 + np.sum(y[group == g] / var[group == g]))
                                            / precision, rel=1e-10)


def test_pooling_with_the_hyper_mean_integrated_out_is_exact():
    """All records jointly: Normal(m₀, diag(v) + τ²·(same group) + s₀²), and the conditionals
    of μ and of the group means are those of Gaussian conditioning."""
    import pytensor
    import pytensor.tensor as pt

    rng = np.random.default_rng(7)
    group = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2])
    y = rng.normal(85, 10, group.size)
    var = rng.uniform(30, 200, group.size)
    m0, s0, tau = 85.0, 30.0, 6.0
    logp, draw = mb.pooled_estimates(y, var, group, 3, tau, (m0, s0))
    z_mu, z_g = pt.scalar("z_mu"), pt.vector("z_g")
    mu, theta = draw(z_mu, z_g)
    f = pytensor.function([z_mu, z_g], [logp, mu, theta], mode="FAST_COMPILE",
                          on_unused_input="ignore")
    same = (group[:, None] == group[None, :]).astype(float)
    cov = np.diag(var) + tau**2 * same + s0**2
    value, mu0, theta0 = f(0.0, np.zeros(3))
    assert float(value) == pytest.approx(stats.multivariate_normal(np.full(y.size, m0), cov).logpdf(y),
                                         rel=1e-10)
    # μ | y: Gaussian conditioning with the group means integrated out
    inner = np.linalg.inv(np.diag(var) + tau**2 * same)
    precision = 1 / s0**2 + inner.sum()
    assert float(mu0) == pytest.approx((m0 / s0**2 + inner.sum(axis=0) @ y) / precision, rel=1e-10)
    assert float(f(1.0, np.zeros(3))[1]) - float(mu0) == pytest.approx(precision**-0.5, rel=1e-10)
    # θ | μ, y at μ = the drawn value
    for g in range(3):
        prec = 1 / tau**2 + np.sum(1 / var[group == g])
        assert theta0[g] == pytest.approx((float(mu0) / tau**2 + np.sum(y[group == g] / var[group == g]))
                                          / prec, rel=1e-10)
        unit = np.eye(3)[g]
        assert f(0.0, unit)[2][g] - theta0[g] == pytest.approx(prec**-0.5, rel=1e-10)


def test_pooling_model_samples_no_group_effect_directly():
    """Hyper-means, group means and the fixed fluxes are functions of unit-scale draws, not free
    variables tied to a group scale (the funnel and banana that gave divergent transitions)."""
    from data.jian2022 import load_budget_inputs

    inputs = require_data(load_budget_inputs)
    model = mb.build_bayes_model(inputs)
    free = {v.name for v in model.free_RVs}
    assert {"z_GPP_mean", "z_GPP_method", "z_RS_mean", "z_RS_method", "z_herbivory", "z_sink", "z_DOC",
            "z_BVOC"} <= free
    assert not free & {"mu_GPP", "mu_RS", "GPP_method_mean", "RS_method_effect", "herbivory", "sink",
                       "DOC", "BVOC"}
    named = set(model.named_vars)
    assert {"mu_GPP", "mu_RS", "GPP_method_mean", "RS_method_effect", "herbivory", "GPP_direct",
            "RS_implied"} <= named


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_default_budget_model_passes_its_gate(seed):
    """The Bayesian part of ``python -m inference.budget`` on its defaults passes the gate."""
    from inference.budget import run_bayes
    from models.summary import diagnose
    from tpflux.carbon_budget import BudgetRunConfig, budget_inputs

    c = BudgetRunConfig(seed=seed)
    inputs = require_data(budget_inputs, c)  # the job's own defaults: ratio source, area shares
    dt, _, _ = run_bayes(inputs, c.model_config(), chains=c.chains, draws=c.draws, tune=c.tune,
                         seed=seed, sampler=c.sampler, target_accept=c.target_accept)
    diag = diagnose(dt)
    assert diag["verdict"] == "pass", diag["failed"]
    assert diag["divergences"] == 0


def test_target_accept_is_checked_before_any_work(no_work):
    from tpflux.carbon_budget import BudgetRunConfig, budget

    for bad in (1.5, 1.0, 0.2, float("nan")):
        with pytest.raises(DataError) as err:
            budget(target_accept=bad)
        assert err.value.column == "--target-accept"
    assert BudgetRunConfig(target_accept=0.97).target_accept == 0.97


def test_cli_target_accept_reaches_the_sampler_and_the_record(tmp_path, monkeypatch):
    import pymc as pm

    import tpflux
    from inference.budget import main

    seen = {}

    def fake_sample(**kw):
        seen.update(kw)
        rng = np.random.default_rng(kw["random_seed"])
        shape = (kw["chains"], kw["draws"])
        names = ("GPP_direct", "GPP_implied", "RS_direct", "RS_implied", "GPP_diff", "RS_diff",
                 "mu_NPP", "mu_fire", "RC", "Froot", "RaGPP")
        post = xr.Dataset({n: (("chain", "draw"), rng.normal(50, 1, shape)) for n in names})
        return xr.DataTree.from_dict({"/posterior": post})

    monkeypatch.setattr(pm, "sample", fake_sample)
    out = tmp_path / "run"
    assert main(["--no-rf", "--n-draws", "100", "--variant", "weighted", "--draws", "50",
                 "--target-accept", "0.97", "--allow-unconverged", "--out", str(out)]) == 0
    assert seen["target_accept"] == 0.97
    assert tpflux.load(out).config.target_accept == 0.97


# ---------------------------------------------------------------- memory
GB = 10**9


@pytest.mark.parametrize("options, column", [
    ({"sample_size": 200_000}, "--sample-size"),
    ({"n_draws": 10**7, "sample_size": 100}, "--sample-size"),
    ({"n_draws": 10**7, "variants": ("weighted", "unweighted", "period")}, "--n-draws"),
    ({"chains": 64, "draws": 10**6}, "--draws")])
def test_sizes_that_cannot_fit_in_memory_are_refused_upfront(no_work, monkeypatch, options, column):
    import tpflux.carbon_budget as cb

    monkeypatch.setattr(cb, "available_memory", lambda: 2 * GB)
    with pytest.raises(DataError) as err:
        cb.budget(**options)
    assert err.value.column == column
    assert "GB of memory" in err.value.problem and "2.0 GB is available" in err.value.problem


def test_cli_sample_size_200000_exits_2_and_writes_nothing(no_work, tmp_path, capsys):
    from inference.budget import main

    out = tmp_path / "never"
    assert main(["--sample-size", "200000", "--out", str(out)]) == EXIT_BAD_INPUT
    line = _one_error_line(capsys)
    # 10,000 draws × 200,000 values × 32 bytes: 64 GB, far beyond a test machine
    assert ":--sample-size:" in line and "64.0 GB" in line
    assert not out.exists() and not list(tmp_path.iterdir())


def test_default_sizes_fit_in_little_memory():
    from tpflux.carbon_budget import BudgetRunConfig, check_memory

    check_memory(BudgetRunConfig(), available=GB // 2)  # default: a few tens of MB
    with pytest.raises(DataError):
        check_memory(BudgetRunConfig(sample_size=20_000), available=GB // 2)


def test_memory_estimate_matches_what_resampling_allocates():
    """The per-value constant of the estimate is what numpy allocates while drawing means."""
    import tracemalloc

    n, m = 2000, 500
    values, sd = np.linspace(70, 100, 30), np.full(30, 5.0)
    rng = np.random.default_rng(0)
    tracemalloc.start()
    try:
        mb.resample_means(rng, values, sd, n_draws=n, sample_size=m)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    estimate = mb.memory_bytes(n, m, 0)["resampling"]
    assert 0.6 * estimate <= peak <= 1.1 * estimate


# ---------------------------------------------------------------- free disk space
def _fake_disk(monkeypatch, free: int, seen: list | None = None):
    real = shutil.disk_usage

    def disk_usage(path):
        if seen is not None:
            seen.append(Path(path))
        usage = real(path)
        return type(usage)(usage.total, usage.total - free, free)

    monkeypatch.setattr(shutil, "disk_usage", disk_usage)


def test_check_out_dir_measures_the_nearest_existing_parent(tmp_path, monkeypatch):
    seen = []
    _fake_disk(monkeypatch, 5_000_000, seen)
    out = tmp_path / "a" / "b" / "run"
    with pytest.raises(DataError) as err:
        storage.check_out_dir(out, need_bytes=20_000_000)
    assert seen == [tmp_path]
    assert err.value.file == str(tmp_path)
    assert "5.0 MB free" in err.value.problem and "20.0 MB" in err.value.problem
    assert storage.check_out_dir(out, need_bytes=4_000_000) == out
    assert storage.check_out_dir(out) == out  # no estimate, no check
    assert not (tmp_path / "a").exists()


def test_budget_refuses_a_full_disk_before_loading_data(no_work, tmp_path, monkeypatch, capsys):
    from inference.budget import main

    _fake_disk(monkeypatch, 1_000_000)
    out = tmp_path / "run"
    assert main(["--no-bayes", "--no-rf", "--out", str(out)]) == EXIT_BAD_INPUT
    assert "free" in _one_error_line(capsys)
    assert not list(tmp_path.iterdir())


def test_budget_estimate_grows_with_its_options(no_work, tmp_path, monkeypatch, capsys):
    """100 MB free holds a default budget folder but not 10⁷ draws of six variants (1.9 GB)."""
    from inference import budget

    _fake_disk(monkeypatch, 100_000_000)
    args = budget.parser().parse_args([])
    assert budget.output_bytes(args) < 100_000_000
    assert budget.main(["--n-draws", str(10**7), "--out", str(tmp_path / "run")]) == EXIT_BAD_INPUT
    assert "1.9 GB" in _one_error_line(capsys)


def test_every_job_checks_the_disk_before_any_work(tmp_path, monkeypatch, capsys):
    import pymc as pm

    from inference import fit_ea, fit_rr

    monkeypatch.setattr(pm, "sample", lambda *a, **kw: pytest.fail("sampled"))
    _fake_disk(monkeypatch, 1_000)
    for main, argv in ((fit_ea.main, ["--dataset", "synthetic"]),
                       (fit_rr.main, ["--dataset", "synthetic-warming"])):
        out = tmp_path / "run"
        assert main([*argv, "--out", str(out)]) == EXIT_BAD_INPUT
        assert "free" in _one_error_line(capsys)
        assert not out.exists()


# ---------------------------------------------------------------- reports of malformed folders
RUN_ID = "0123456789ab"


def _budget_run(folder: Path, *, posterior: bool = False) -> Path:
    """A small budget run folder written by hand: summary, draws (resampling), run marker."""
    rng = np.random.default_rng(0)
    attrs = {"run_id": RUN_ID, "tpflux_job": "budget", "created": "2026-01-01T00:00:00+00:00",
             "tpflux_config": json.dumps({"dataset": "jian2022"}), "package_versions": "{}"}
    n = 400
    fluxes = {"GPP_direct": (113, 9), "GPP_implied": (149, 13), "RS_direct": (87, 4), "RS_implied": (68, 5)}
    resampling = xr.Dataset({k: (("variant", "draw"), rng.normal(m, s, (1, n))) for k, (m, s) in fluxes.items()},
                            coords={"variant": ["weighted"], "draw": np.arange(n)})
    draws = xr.DataTree.from_dict({"/": xr.Dataset(), "/resampling": resampling})
    draws.attrs.update(attrs)
    rows = [{"quantity": k, "variant": "weighted", "method": "resampling", "term": "",
             "median": m, "ci_low": m - 2 * s, "ci_high": m + 2 * s} for k, (m, s) in fluxes.items()]
    rows += [{"quantity": f"p_agree_{f}", "variant": "weighted", "method": "resampling", "term": "",
              "median": 0.05} for f in ("GPP", "RS")]
    folder.mkdir(parents=True)
    storage.write_csv(folder / "budget_summary.csv", pd.DataFrame(rows))
    storage.write_datatree(folder / "budget_draws.nc", draws)
    if posterior:
        post = xr.Dataset({k: (("chain", "draw"), rng.normal(m, s, (2, 100))) for k, (m, s) in fluxes.items()})
        tree = xr.DataTree.from_dict({"/posterior": post})
        tree.attrs.update(attrs)
        storage.write_datatree(folder / "budget_posterior.nc", tree)
    storage.write_json(folder / storage.RUN_MARKER, {"job": "budget", "run_id": RUN_ID})
    return folder


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _make_case(folder: Path, case: str) -> Path:
    if case == "missing":
        return folder
    if case == "a file":
        folder.write_text("not a folder")
        return folder
    if case == "empty":
        folder.mkdir()
        return folder
    if case == "another job":
        folder.mkdir()
        storage.write_csv(folder / "season_comparison.csv", pd.DataFrame({"scheme": ["julian"]}))
        storage.write_json(folder / storage.RUN_MARKER, {"job": "compare_seasons", "run_id": RUN_ID})
        return folder
    if case == "marker without its files":
        folder.mkdir()
        storage.write_json(folder / storage.RUN_MARKER, {"job": "fit_ea", "run_id": RUN_ID})
        storage.write_csv(folder / "budget_summary.csv", pd.DataFrame({"quantity": ["GPP_direct"],
                                                                       "median": [1.0]}))
        return folder
    _budget_run(folder, posterior=case in ("truncated posterior", "mixed runs", "no draws in posterior"))
    if case == "truncated draws":
        _truncate(folder / "budget_draws.nc")
    elif case == "truncated posterior":
        _truncate(folder / "budget_posterior.nc", 0.9)
    elif case == "binary summary":
        (folder / "budget_summary.csv").write_bytes(bytes(range(256)) * 4)
    elif case == "summary without columns":
        pd.read_csv(folder / "budget_summary.csv").drop(columns="median").to_csv(
            folder / "budget_summary.csv", index=False)
    elif case == "summary without rows":
        (folder / "budget_summary.csv").write_text("quantity,median,ci_low,ci_high\n")
    elif case == "summary of the wrong types":
        frame = pd.read_csv(folder / "budget_summary.csv")
        frame["median"] = "about 113"
        frame.to_csv(folder / "budget_summary.csv", index=False)
    elif case == "corrupt diagnostics":
        (folder / "diagnostics.json").write_text('{"verdict": NaN, ')
    elif case == "draws of another job":
        tree = xr.DataTree.from_dict({"/posterior": xr.Dataset({"E": (("chain", "draw"), np.ones((1, 3)))})})
        tree.attrs["run_id"] = RUN_ID
        storage.write_datatree(folder / "budget_draws.nc", tree)
    elif case == "mixed runs":
        tree = storage.read_datatree(folder / "budget_posterior.nc")
        tree.attrs["run_id"] = "ffffffffffff"
        storage.write_datatree(folder / "budget_posterior.nc", tree)
    elif case == "no draws in posterior":
        tree = xr.DataTree.from_dict({"/posterior": xr.Dataset({"GPP_direct": ("x", np.ones(3))})})
        tree.attrs["run_id"] = RUN_ID
        storage.write_datatree(folder / "budget_posterior.nc", tree)
    else:
        raise AssertionError(case)
    return folder


BAD_FOLDERS = ["missing", "a file", "empty", "another job", "marker without its files", "truncated draws",
               "truncated posterior", "binary summary", "summary without columns", "summary without rows",
               "summary of the wrong types", "corrupt diagnostics", "draws of another job", "mixed runs",
               "no draws in posterior"]


def _report_entries(folder: Path) -> set[str]:
    if not folder.is_dir():
        return set()
    return {p.name for p in folder.iterdir()} & {"report.html", "figures", "tables", "methods.md",
                                                   "methods.tex"} | {p.name for p in folder.glob(".report.*")}


@pytest.mark.parametrize("case", BAD_FOLDERS)
def test_malformed_run_folder_is_one_error_line_and_nothing_written(tmp_path, capsys, case):
    from reports import build

    folder = _make_case(tmp_path / "run", case)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert build.main([str(folder)]) == EXIT_BAD_INPUT
    line = _one_error_line(capsys)
    assert str(folder) in line and " — " in line
    assert not _report_entries(folder)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before, "nothing written, nothing left behind"


def test_a_bad_folder_among_several_stops_before_any_report(tmp_path, capsys):
    from reports import build

    good = _budget_run(tmp_path / "good")
    bad = _make_case(tmp_path / "bad", "summary without columns")
    assert build.main([str(good), str(bad)]) == EXIT_BAD_INPUT
    _one_error_line(capsys)
    assert not _report_entries(good)


# ---------------------------------------------------------------- reports written as a whole
def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def reported(tmp_path):
    """A budget run folder with its report built once."""
    from reports import build

    folder = _budget_run(tmp_path / "run")
    assert build.main([str(folder)]) == 0
    assert (folder / "figures" / "budget_consistency_weighted.png").stat().st_size > 1000
    assert (folder / "tables" / "budget_summary.csv").exists()
    return folder


def test_a_rebuild_replaces_the_whole_report(reported, capsys):
    from reports import build

    (reported / "figures" / "stale.png").write_bytes(b"old figure")
    (reported / "tables" / "stale.csv").write_text("old table")
    (reported / "report.html").write_text("<html>old report</html>")
    assert build.main([str(reported)]) == 0
    assert not (reported / "figures" / "stale.png").exists()
    assert not (reported / "tables" / "stale.csv").exists()
    assert "old report" not in (reported / "report.html").read_text(encoding="utf-8")
    assert not list(reported.glob(".report.*")) and not list(reported.rglob("*.part"))


def test_a_failed_build_keeps_the_previous_report_byte_identical(reported, monkeypatch, capsys):
    from reports import build

    before = _snapshot(reported)

    def full_disk(rep):
        # figures and tables are drawn by now, in the staging folder
        assert list(rep.fig_dir.glob("*.png")) and rep.fig_dir.parent != reported
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(build, "render", full_disk)
    assert build.main([str(reported)]) == EXIT_BAD_INPUT
    assert "disk filled up" in _one_error_line(capsys, progress=True)
    assert _snapshot(reported) == before
    assert not list(reported.glob(".report.*"))


def test_a_kill_at_any_rename_never_shows_a_mixed_report(reported, monkeypatch):
    """At every moment of installing a new report, report.html is absent or sits with its own
    figures/ and tables/ — the old ones or the new ones, complete."""
    from reports import build

    (reported / "figures" / "OLD").write_text("")
    (reported / "tables" / "OLD").write_text("")
    with open(reported / "report.html", "a", encoding="utf-8") as f:
        f.write("<!-- old -->")
    new_figures = {p.name for p in (reported / "figures").iterdir()} - {"OLD"}
    new_tables = {p.name for p in (reported / "tables").iterdir()} - {"OLD"}
    states = []
    real_replace = os.replace

    def check_state():
        html = reported / "report.html"
        if not html.exists():
            states.append("none")
            return
        figures = {p.name for p in (reported / "figures").iterdir()} if (reported / "figures").exists() else set()
        tables = {p.name for p in (reported / "tables").iterdir()} if (reported / "tables").exists() else set()
        if "<!-- old -->" in html.read_text(encoding="utf-8"):
            assert "OLD" in figures and "OLD" in tables and new_figures <= figures
            states.append("old")
        else:
            assert figures == new_figures and tables == new_tables
            assert (reported / "methods.md").exists()
            states.append("new")

    def replace(src, dst):
        check_state()
        real_replace(src, dst)

    monkeypatch.setattr(build.os, "replace", replace)
    assert build.main([str(reported)]) == 0
    monkeypatch.setattr(build.os, "replace", real_replace)
    check_state()
    assert states[0] == "old" and states[-1] == "new" and "none" in states
    assert not any(a == "new" and b == "old" for a, b in zip(states, states[1:]))


def test_an_interrupted_install_puts_the_previous_report_back(reported, monkeypatch, capsys):
    from reports import build

    before = _snapshot(reported)
    real_replace, moved_in = os.replace, []

    def replace(src, dst):
        if Path(dst).parent == reported:  # a new entry moved into the run folder
            moved_in.append(Path(dst).name)
            if len(moved_in) == 3:  # the old report is out, the new one half in
                raise OSError(errno.EIO, "Input/output error")
        real_replace(src, dst)

    monkeypatch.setattr(build.os, "replace", replace)
    assert build.main([str(reported)]) == EXIT_BAD_INPUT
    assert "cannot write the report" in _one_error_line(capsys, progress=True)
    monkeypatch.setattr(build.os, "replace", real_replace)
    assert _snapshot(reported) == before
    assert not list(reported.glob(".report.*"))


def test_a_killed_builds_staging_folder_is_removed_by_the_next(reported):
    from reports import build

    stale = reported / ".report.999999999.abcd.tmp"
    (stale / "figures").mkdir(parents=True)
    (stale / "figures" / "half.png").write_bytes(b"\x89PNG")
    old = reported / ".report.999999999.efgh.old"
    old.mkdir()
    assert build.main([str(reported)]) == 0
    assert not stale.exists() and not old.exists()


def test_a_folder_being_written_is_refused(reported, capsys):
    from reports import build

    lock = reported.parent / f".{reported.name}.lock"
    lock.write_text(f"{os.getppid()}\n")  # a live process other than this one holds it
    try:
        before = _snapshot(reported)
        assert build.main([str(reported)]) == EXIT_BAD_INPUT
        assert "being written" in _one_error_line(capsys, progress=True)
        assert _snapshot(reported) == before
    finally:
        lock.unlink()


def test_a_read_only_run_folder_is_refused(reported, capsys, monkeypatch):
    from reports import build

    before = _snapshot(reported)
    reported.chmod(0o555)
    if os.geteuid() == 0:  # root may write anyway: the permission is what the check reads
        real = os.access
        monkeypatch.setattr(os, "access", lambda path, mode, *a, **k: (
            not (mode & os.W_OK) and real(path, mode)) if Path(path) == reported else real(path, mode, *a, **k))
    try:
        assert build.main([str(reported)]) == EXIT_BAD_INPUT
        assert "cannot be written" in _one_error_line(capsys, progress=True)
    finally:
        reported.chmod(0o755)
    assert _snapshot(reported) == before
