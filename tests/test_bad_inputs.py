"""The malformed-input corpus (tests/bad_inputs/, listed in MANIFEST.csv) through every reader and
entry point: exit code 2, one ``error: FILE:ROW:COLUMN: …`` line, no traceback, nothing written.

Entries whose ``expect`` is ``handled`` look wrong but have a right result (a site named ``#1``,
a missing grid day, ``NA`` spellings): the entry point succeeds without a traceback and
``HANDLED_CHECKS`` checks the result it gives.

Entries whose ``gap`` column is filled describe where the code falls short today; they are strict
expected failures, so a fix turns them into an unexpected pass that asks for the mark's removal.
"""

from __future__ import annotations

import csv
import importlib
import json
import re
import shlex
from pathlib import Path

import pandas as pd
import pytest
import xarray as xr

from data.errors import DataError
from tests.helpers import mock_sampling, run_module

CORPUS = Path(__file__).resolve().parent / "bad_inputs"
MANIFEST = list(csv.DictReader(open(CORPUS / "MANIFEST.csv", encoding="utf-8")))
REFUSED = [r for r in MANIFEST if r["expect"] == "refused"]
HANDLED = [r for r in MANIFEST if r["expect"] == "handled"]

# entry → (module with main(argv), option taking the file, whether it takes --out)
ENTRY_POINTS = {
    "fit_ea": ("inference.fit_ea", "--data", True),
    "inspect": ("data.inspect", "--data", False),
    "fit_rr": ("inference.fit_rr", "--table", True),
    "project": ("inference.project", "--drivers", True),
    "budget": ("inference.budget", "--area-shares", True),
}
# What the issue asks the corpus to cover, as words of the manifest's "why" column.
REQUIRED_KINDS = ("missing units", "unknown flux unit", "kelvin", "-9999", "all-missing column",
                  "zero flux", "sign-mixed", "duplicate site-date", "a single site",
                  "a single season", "unparseable date", "byte-order mark", "wrong delimiter",
                  "absurd magnitude", "empty file", "truncated gzip", "wrong dimensions",
                  "-999 ", "-99999", "spelled", "before 1677", "after 2262", "a folder",
                  "zero time steps", "negative cell_area", "latitude 99", "fahrenheit",
                  "site names", "na-like", "missing day", "0…360", "_fillvalue")
MAX_ENTRY_BYTES = 64 * 1024


def _case(row: dict, what: str):
    marks = [pytest.mark.xfail(strict=True, reason=row["gap"])] if row["gap"] else []
    return pytest.param(row, id=f"{row['file']}[{what}]", marks=marks)


def _expected_prefix(row: dict) -> str:
    return f"{CORPUS / row['error_file']}:{row['row']}:{row['column']}: "


@pytest.fixture
def fast_sampling(monkeypatch):
    """NUTS replaced by prior draws of the sampled variables: a refusal must come before sampling,
    and an input that is not refused reaches the end in seconds (and fails the test)."""
    mock_sampling(monkeypatch)


def test_corpus_is_complete_small_and_listed():
    assert len(MANIFEST) >= 30
    listed = {r["file"] for r in MANIFEST}
    present = {p.name for p in CORPUS.iterdir()} - {"MANIFEST.csv", "make_corpus.py", "__pycache__"}
    assert present == listed
    for row in MANIFEST:
        path = CORPUS / row["file"]
        size = sum(f.stat().st_size for f in path.iterdir()) if path.is_dir() else path.stat().st_size
        assert size <= MAX_ENTRY_BYTES, row["file"]
        assert (CORPUS / row["error_file"]).exists(), row["error_file"]
        assert row["entry"] in ENTRY_POINTS, row["entry"]
        assert row["row"] == "-" or int(row["row"]) >= 1
        assert row["column"] and row["why"]
        assert row["expect"] in ("refused", "handled"), row["file"]
        if row["expect"] == "handled":
            assert row["file"] in HANDLED_CHECKS, f"no check for the handled entry {row['file']}"
    whys = " | ".join(r["why"].lower() for r in MANIFEST)
    missing = [k for k in REQUIRED_KINDS if k not in whys]
    assert not missing, f"the corpus lacks: {missing}"
    readers = {r["reader"].split(":")[0] for r in MANIFEST if r["reader"] != "-"}
    assert {"data.chamber", "data.fluxnet", "data.cosore", "data.warming", "data.grid",
            "data.jian2022"} <= readers


def _run_entry(row: dict, tmp_path: Path) -> tuple[int, Path]:
    """Run the corpus row's entry point in this process on its file: (exit code, its --out)."""
    module, option, takes_out = ENTRY_POINTS[row["entry"]]
    out = tmp_path / "run"
    argv = [option, str(CORPUS / row["file"]), *shlex.split(row["args"])]
    if takes_out:
        argv += ["--out", str(out)]
    return importlib.import_module(module).main(argv), out


@pytest.mark.parametrize("row", [_case(r, "entry") for r in REFUSED])
def test_entry_point_exits_2_with_one_line_and_writes_nothing(row, tmp_path, capsys, fast_sampling):
    code, out = _run_entry(row, tmp_path)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2, err
    assert len(errors) == 1, err
    assert errors[0].startswith("error: " + _expected_prefix(row)), errors[0]
    # Anything else on stderr is a time-stamped progress line, never a warning.
    others = [line for line in err.splitlines() if not line.startswith("error: ")]
    assert all(re.match(r"\[\d\d:\d\d:\d\d\] ", line) for line in others), others
    assert not out.exists()


def _call_reader(row: dict):
    module, name = row["reader"].split(":")
    path = CORPUS / row["file"]
    if row["reader"] == "models.meta:effect_sizes":
        from data.warming import load_warming
        from models.meta import effect_sizes

        table = load_warming(path)
        return effect_sizes(table.table, source=table.source)
    if row["reader"] == "data.grid:require_land_cover":
        from data.grid import read_driver_grid, require_land_cover

        return require_land_cover(read_driver_grid(path), path)
    return getattr(importlib.import_module(module), name)(path)


@pytest.mark.parametrize("row", [_case(r, "reader") for r in REFUSED if r["reader"] != "-"])
def test_reader_raises_data_error_naming_file_row_column(row):
    with pytest.raises(DataError) as info:
        _call_reader(row)
    exc = info.value
    assert Path(exc.file) == CORPUS / row["error_file"]
    assert str(exc.row) == row["row"]
    assert exc.column == row["column"]
    assert str(exc).startswith(f"{exc.file}:{exc.row}:{exc.column}: ")
    assert " — " in str(exc)  # says what to do


# One entry per entry point as a real command: what a user sees, warnings and all.
_CLI_CASES = {}
for _row in REFUSED:
    if not _row["gap"] and _row["entry"] not in _CLI_CASES:
        _CLI_CASES[_row["entry"]] = _row


@pytest.mark.parametrize("row", list(_CLI_CASES.values()), ids=list(_CLI_CASES))
def test_command_line_prints_one_line_and_no_traceback(row, tmp_path):
    module, option, takes_out = ENTRY_POINTS[row["entry"]]
    out = tmp_path / "run"
    args = [option, str(CORPUS / row["file"]), *shlex.split(row["args"])]
    if takes_out:
        args += ["--out", str(out)]
    done = run_module(module, *args, cwd=tmp_path, timeout=300)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: " + _expected_prefix(row)), done.stderr
    others = [line for line in done.stderr.splitlines() if not line.startswith("error: ")]
    assert all(re.match(r"\[\d\d:\d\d:\d\d\] ", line) for line in others), done.stderr
    assert not out.exists()
    assert not any(tmp_path.iterdir())  # nothing written beside the run folder either


# ---------------------------------------------------------------- inputs with a right result
def _inspected(out, stdout):
    return json.loads(stdout)


def _check_hash_sites(out, stdout):
    info = _inspected(out, stdout)
    rows = {site["site"]: site["n_rows"] for site in info["sites"]}
    assert rows == {"#1": 6, "#2": 6}, rows  # the '#' lines below the header that are rows
    assert info["n_rows"] == 12 and not info["dropped"]


def _check_na_spellings(out, stdout):
    info = _inspected(out, stdout)
    assert info["dropped"] == {"flux missing": 5} and info["n_rows"] == 7


def _check_fluxnet_spellings(out, stdout):
    info = _inspected(out, stdout)
    assert info["dropped"] == {"flux missing": 3} and info["n_rows"] == 5


def _check_pipe_sites(out, stdout):
    summary = pd.read_csv(out / "ea_summary.csv")
    e_site = summary[summary["quantity"] == "E_site"]
    assert len(e_site) == 4
    assert set(e_site["site"]) == {"HY|1", "HY|2"}
    assert set(e_site["flux_class"]) == {"wetland_emission"}
    assert set(e_site["season"]) == {"growing", "non-growing"}


def _grid(out):
    with xr.open_datatree(out / "projection.nc", engine="h5netcdf") as tree:
        grid = tree["grid"].to_dataset().load()
    total = grid["region_total"].sel(scenario_c=0.0, mode="rf", flux_class="total_net",
                                     period="annual")
    if int(grid["cells_in_total"].sel(period="annual")) == 0:
        # a record of a few days has no annual total: withheld, never scaled up to a year
        assert bool(total.isnull().all()) and int(grid["cells_withheld"].sel(period="annual")) > 0
    else:
        assert bool((total > 0).all()), "a regional total that is not a positive flux"
    return grid


def _grid_counts(missing, empty):
    def check(out, stdout):
        grid = _grid(out)
        assert int(grid["cell_days_missing"]) == missing
        assert int(grid["cells_without_valid_day"]) == empty
    return check


def _check_lon_0_360(out, stdout):
    _grid(out)
    maps = xr.open_datatree(out / "projection_maps.nc", engine="h5netcdf").to_dataset()
    assert maps["lon"].values.tolist() == [-109.75, -109.25, -108.75]


HANDLED_CHECKS = {
    "chamber_hash_site_names.csv": _check_hash_sites,
    "chamber_na_spellings.csv": _check_na_spellings,
    "chamber_pipe_site_names.csv": _check_pipe_sites,
    "FLX_US-BZF_FLUXNET-CH4-synthetic_DD_2016-2016_fill-9999-spellings.csv": _check_fluxnet_spellings,
    "grid_one_nan_day.nc": _grid_counts(1, 0),
    "grid_nan_time_step.nc": _grid_counts(6, 0),
    "grid_all_nan_land_cell.nc": _grid_counts(4, 1),
    "grid_declared_fill_value.nc": _grid_counts(1, 0),
    "grid_longitude_0_360.nc": _check_lon_0_360,
}


@pytest.mark.parametrize("row", [_case(r, "handled") for r in HANDLED])
def test_handled_input_gives_the_right_result(row, tmp_path, capsys, fast_sampling):
    code, out = _run_entry(row, tmp_path)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert code == 0, captured.err
    assert not [line for line in captured.err.splitlines() if line.startswith("error: ")]
    HANDLED_CHECKS[row["file"]](out, captured.out)


@pytest.mark.parametrize("row", [_case(r, "handled-reader") for r in HANDLED if r["reader"] != "-"])
def test_reader_accepts_a_handled_input(row):
    _call_reader(row)
