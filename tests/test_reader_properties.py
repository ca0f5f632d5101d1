"""Property: on any input, each reader returns validated Observations or raises DataError — never
another exception. Inputs are random bytes and text, and CSV-like files with missing columns,
garbage values, random delimiters, byte-order marks, gzip and truncated gzip."""

from __future__ import annotations

import gzip
import tempfile
import warnings
from pathlib import Path

import hypothesis.strategies as st
from hypothesis import HealthCheck, event, given, settings

from data.chamber import read_chamber_csv
from data.cosore import read_cosore
from data.errors import DataError
from data.fluxnet import read_fluxnet_ch4
from data.table import Observations, validate_observations

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CHAMBER_COLUMNS = ["site", "date", "days", "flux", "flux_unit", "soil_temp_c", "soil_temp",
                   "soil_temp_unit", "ecosystem", "method", "latitude", "longitude", "n_sub",
                   "wtd_m", "swc", "ustar", "le", "nee", "gpp", "notes"]
FLUXNET_COLUMNS = ["TIMESTAMP", "TIMESTAMP_START", "TIMESTAMP_END", "FCH4", "FCH4_F", "TS_1", "TS_2",
                   "TS_1_1_1", "SWC_1", "SWC_F_1", "WTD", "WTD_F", "USTAR", "LE", "NEE", "GPP_NT"]
COSORE_COLUMNS = ["CSR_PORT", "CSR_TIMESTAMP_BEGIN", "CSR_TIMESTAMP_END", "CSR_FLUX_CH4", "CSR_T5",
                  "CSR_T10", "CSR_SM10", "CSR_WTD"]

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(-50, 50).map(lambda x: f"{x:.3f}"),
    st.integers(-10_000, 10_000).map(str),
    st.sampled_from(["", "NA", "-9999", "nan", "inf", "1e400", "1,5", "abc", "  3 ", "+2", "0x1F",
                     "-999", "-9999.0", "-99999", "-999.9", "#N/A", "n/a", "NULL"]),
)
dates = st.one_of(
    st.dates().map(lambda d: d.isoformat()),
    st.dates().map(lambda d: d.strftime("%Y%m%d")),
    st.datetimes().map(lambda d: d.strftime("%Y%m%d%H%M")),
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S")),
    st.sampled_from(["2020-02-30", "20201301", "2020013", "yesterday", "", "1600-01-01", "2300-12-31",
                     "16000101", "23000101", "160001010000", "2262-04-11 23:59:59"]),
)
words = st.one_of(
    st.sampled_from(["A", "B", "#1", "A|B", "WET", "GRA", "Grassland", "static_chamber", "autochamber", "bag", "C", "K",
                     "F", "nmol m-2 s-1", "mg CH4 m-2 h-1", "g CH4 m-2 yr-1", "ppm", "1", "2", ""]),
    st.text(max_size=12),
)
cells = st.one_of(numbers, dates, words)


@st.composite
def csv_like(draw, columns: list[str]) -> bytes:
    header = draw(st.lists(st.one_of(st.sampled_from(columns), st.text(max_size=8)), min_size=0,
                           max_size=len(columns) + 2))
    if draw(st.booleans()):
        header = list(dict.fromkeys(header))
    delimiter = draw(st.sampled_from([",", ",", ",", ";", "\t", "|"]))
    n_rows = draw(st.integers(0, 8))
    rows = []
    for _ in range(n_rows):
        width = len(header) + draw(st.sampled_from([0, 0, 0, -1, 1]))
        rows.append(delimiter.join(draw(st.lists(cells, min_size=max(width, 0), max_size=max(width, 0)))))
    text = "\n".join([delimiter.join(header), *rows]) + draw(st.sampled_from(["\n", "", "\r\n"]))
    if draw(st.booleans()):
        text = "\ufeff" + text
    return text.encode("utf-8", errors="surrogatepass")


def floats(lo, hi):
    return st.floats(lo, hi).map(lambda x: f"{x:.4g}")


def stamp_dd(k: int) -> str:
    return f"2020{1 + k // 28:02d}{1 + k % 28:02d}"


def stamp_hh(k: int) -> str:
    return f"2020{1 + k // 1344:02d}{1 + k // 48 % 28:02d}{k % 48 // 2:02d}{k % 2 * 30:02d}"


def chamber_columns(keys):
    return {
        "site": st.sampled_from(["A", "B", "#3", "HY|1"]).map(lambda s: [s] * len(keys)),
        "date": st.just([f"2020-{1 + k // 28:02d}-{1 + k % 28:02d}" for k in keys]),
        "days": st.lists(st.integers(1, 31).map(str), min_size=len(keys), max_size=len(keys)),
        "flux": st.lists(floats(-900, 900), min_size=len(keys), max_size=len(keys)),
        "flux_unit": st.sampled_from(["nmol m-2 s-1", "ug CH4 m-2 h-1", "mg CH4-C m-2 d-1"]).map(
            lambda u: [u] * len(keys)),
        "soil_temp_c": st.lists(floats(-20, 40), min_size=len(keys), max_size=len(keys)),
        "ecosystem": st.sampled_from(["WET", "GRA", "grassland"]).map(lambda e: [e] * len(keys)),
        "latitude": st.just(["32.8"] * len(keys)), "longitude": st.just(["102.5"] * len(keys)),
        "swc": st.lists(floats(0, 1), min_size=len(keys), max_size=len(keys)),
    }


def fluxnet_columns(keys, hh):
    n = len(keys)
    cols = {"FCH4": st.lists(floats(-500, 500), min_size=n, max_size=n),
            "FCH4_F": st.lists(floats(-500, 500), min_size=n, max_size=n),
            "TS_1": st.lists(st.one_of(floats(-20, 40), st.just("-9999")), min_size=n, max_size=n),
            "TS_2": st.lists(floats(-20, 40), min_size=n, max_size=n),
            "SWC_1": st.lists(floats(0, 100), min_size=n, max_size=n),
            "WTD": st.lists(floats(-1, 1), min_size=n, max_size=n),
            "GPP_NT": st.lists(floats(-5, 30), min_size=n, max_size=n)}
    if hh:
        cols["TIMESTAMP_START"] = st.just([stamp_hh(k) for k in keys])
        cols["TIMESTAMP_END"] = st.just([stamp_hh(k + 1) for k in keys])
    else:
        cols["TIMESTAMP"] = st.just([stamp_dd(k) for k in keys])
    return cols


def cosore_columns(keys):
    n = len(keys)
    return {"CSR_PORT": st.just([str(k % 3) for k in keys]),
            "CSR_TIMESTAMP_BEGIN": st.just([f"2020-01-{1 + k // 72:02d} {k // 3 % 24:02d}:00:00"
                                            for k in keys]),
            "CSR_FLUX_CH4": st.lists(floats(-5, 5), min_size=n, max_size=n),
            "CSR_T10": st.lists(floats(-10, 25), min_size=n, max_size=n),
            "CSR_SM10": st.lists(floats(5, 40), min_size=n, max_size=n)}


@st.composite
def structured(draw, make) -> bytes:
    """A comma-separated file with most of a reader's columns and plausible values, sometimes
    with one column dropped and one cell replaced by garbage."""
    if draw(st.booleans()):  # a contiguous run of time steps, else scattered ones
        first = draw(st.integers(0, 250))
        keys = list(range(first, first + draw(st.integers(1, 50))))
    else:
        keys = draw(st.lists(st.integers(0, 300), min_size=1, max_size=40, unique=True).map(sorted))
    columns = {name: draw(values) for name, values in make(keys).items()}
    if draw(st.integers(0, 5)) == 0:
        columns.pop(draw(st.sampled_from(sorted(columns))))
    header = list(columns)
    rows = [[columns[c][i] for c in header] for i in range(len(keys))]
    if header and draw(st.integers(0, 3)) == 0:
        rows[draw(st.integers(0, len(rows) - 1))][draw(st.integers(0, len(header) - 1))] = draw(cells)
    text = "\n".join(",".join(r) for r in [header, *rows]) + "\n"
    return text.encode("utf-8", errors="surrogatepass")


raw_content = st.one_of(st.binary(max_size=300), st.text(max_size=300).map(
    lambda s: s.encode("utf-8", errors="surrogatepass")))


@st.composite
def packed(draw, body) -> tuple[bytes, bool]:
    """Content, possibly gzip-compressed and possibly truncated; returns (bytes, is_gzip)."""
    data = draw(body)
    if draw(st.booleans()):
        data = gzip.compress(data)
        if draw(st.booleans()):
            data = data[: draw(st.integers(0, max(len(data) - 1, 0)))]
        return data, True
    return data, False


def check(call) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the soil-temperature fallback notice
            obs = call()
    except DataError as err:
        event("refused")
        assert "\n" not in str(err) and str(err).count(":") >= 3  # one line, FILE:ROW:COLUMN: …
        return
    assert isinstance(obs, Observations)
    validate_observations(obs.table)
    event("rows" if len(obs.table) else "no rows")


def both(columns, make):
    return packed(st.one_of(structured(make), structured(make), csv_like(columns), raw_content))


@SETTINGS
@given(content=both(CHAMBER_COLUMNS, chamber_columns))
def test_chamber_reader_never_crashes(content):
    data, gz = content
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("chambers.csv.gz" if gz else "chambers.csv")
        path.write_bytes(data)
        check(lambda: read_chamber_csv(path))


@SETTINGS
@given(content=st.sampled_from(["DD", "HH"]).flatmap(lambda r: st.tuples(st.just(r), both(
    FLUXNET_COLUMNS, lambda keys: fluxnet_columns(keys, r == "HH")))),
       coverage=st.sampled_from([0.0, 0.02, 0.5, 1.0]),
       metadata=st.one_of(st.just(b"ID,LAT,LON,IGBP\nXX-TST,45.0,7.0,WET\n"),
                          st.just(b"\xef\xbb\xbfsite,latitude,longitude,igbp\nxx-tst,-45,7,GRA\n"),
                          csv_like(["ID", "LAT", "LON", "IGBP", "site"]), raw_content))
def test_fluxnet_reader_never_crashes(content, coverage, metadata):
    resolution, content = content
    data, gz = content
    with tempfile.TemporaryDirectory() as tmp:
        meta = Path(tmp) / "meta.csv"
        meta.write_bytes(metadata)
        path = Path(tmp) / f"FLX_XX-Tst_FLUXNET-CH4_{resolution}_2020-2020_1-1.csv{'.gz' if gz else ''}"
        path.write_bytes(data)
        check(lambda: read_fluxnet_ch4(path, metadata=meta, min_coverage=coverage))


descriptions = st.one_of(
    st.just("CSR_SITE_NAME: Testmoor\nCSR_LATITUDE: 61.8\nCSR_LONGITUDE: 24.2\nCSR_IGBP: Wetland\n"),
    st.just("CSR_SITE_NAME: Testmoor\nCSR_LATITUDE: 61.8\nCSR_LONGITUDE: 24.2\nCSR_IGBP: Wetland\n"),
    st.lists(st.tuples(st.sampled_from(["CSR_SITE_NAME", "CSR_LATITUDE", "CSR_LONGITUDE", "CSR_IGBP", "#"]),
                       cells), max_size=6).map(lambda kv: "\n".join(f"{k}: {v}" for k, v in kv)),
    st.text(max_size=80),
)


@SETTINGS
@given(content=both(COSORE_COLUMNS, cosore_columns), description=descriptions, per_chamber=st.booleans())
def test_cosore_reader_never_crashes(content, description, per_chamber):
    data, gz = content
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "DESCRIPTION.txt").write_bytes(description.encode("utf-8", errors="surrogatepass"))
        (folder / f"d20990101_TEST_data.csv{'.gz' if gz else ''}").write_bytes(data)
        check(lambda: read_cosore(folder, per_chamber=per_chamber))


def _covariate_grid(path: Path, name: str, code: float, dtype: str, cell: tuple[int, int],
                    declared: bool) -> None:
    """A 4 × 3 grid laid out like the published file (lon, lat), every covariate 1.0, one cell of
    ``name`` holding ``code``; ``declared`` makes the code that variable's ``_FillValue``."""
    import numpy as np
    import xarray as xr

    from data.rc_grid import GRID_COVARIATES

    lat, lon = np.array([1.25, 0.75, 0.25]), np.array([-0.75, -0.25, 0.25, 0.75])
    variables = {"latitude": ("lat", lat), "longitude": ("lon", lon)}
    encoding = {}
    for var, unit in GRID_COVARIATES.items():
        values = np.ones((lon.size, lat.size), dtype=dtype)
        if var == name:
            values[cell] = code
        variables[var] = (("lon", "lat"), values, {"Unit": unit})
        encoding[var] = {"_FillValue": np.array(code, dtype=dtype) if declared and var == name
                         else None}
    xr.Dataset(variables).to_netcdf(path, engine="h5netcdf", encoding=encoding)


@settings(max_examples=25, deadline=None)
@given(name=st.sampled_from(["MAT", "MAP", "SOC", "Percentage_NM"]),
       code=st.sampled_from([-999.0, -9999.0, -99999.0, -999.9, -9999.9]),
       dtype=st.sampled_from(["float32", "float64"]),
       cell=st.tuples(st.integers(0, 3), st.integers(0, 2)), declared=st.booleans())
def test_covariate_grid_fill_codes_are_missing_or_refused(name, code, dtype, cell, declared):
    """A missing-value code in the covariate grid is never a covariate value: missing when the
    file declares it, refused (naming the variable and the cell) when it does not."""
    import numpy as np

    from data.rc_grid import read_rc_grid

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "grid.nc"
        _covariate_grid(path, name, code, dtype, cell, declared)
        lon_j, lat_i = cell
        lat, lon = [1.25, 0.75, 0.25][lat_i], [-0.75, -0.25, 0.25, 0.75][lon_j]
        if declared:
            ds = read_rc_grid(path)
            assert np.isnan(float(ds[name].sel(lat=lat, lon=lon)))
            assert int(ds[name].isnull().sum()) == 1
        else:
            try:
                read_rc_grid(path)
            except DataError as err:
                assert err.column == name
                assert f"lat {lat:g}, lon {lon:g}" in err.problem
            else:
                raise AssertionError(f"{code:g} ({dtype}) in {name} was read as data")


# ---------------------------------------------------------------- column parser vs line reader
quoted = st.one_of(cells, cells, cells, cells.map(lambda c: '"' + c.replace('"', '""') + '"'),
                   st.sampled_from(['"a,b"', '""', '"x""y"', 'a"b', '"a"b', ' "a"', '"a\nb"', '"']))
comment_or_blank = st.sampled_from(["", "   ", "\t", "# note", "#", "#a,b,c,d,e,f,g,h,i,j,k,l,m",
                                    " # x", "\u00a0", "\x0c"])


@st.composite
def csv_layouts(draw) -> bytes:
    """Comma-separated text with blank and comment lines anywhere, rows shorter and longer than
    the header, quoted cells, NA spellings, CRLF or CR line ends."""
    header = draw(st.lists(st.sampled_from(CHAMBER_COLUMNS + ["", "x"]), min_size=1, max_size=6,
                           unique=draw(st.integers(0, 9)) > 0))
    lines = draw(st.lists(comment_or_blank, max_size=2)) + [",".join(header)]
    for _ in range(draw(st.integers(0, 12))):
        if draw(st.integers(0, 5)) == 0:
            lines.append(draw(comment_or_blank))
        else:
            width = max(len(header) + draw(st.sampled_from([0] * 12 + [-1, -2, 1])), 1)
            lines.append(",".join(draw(st.lists(quoted, min_size=width, max_size=width))))
    end = draw(st.sampled_from(["\n", "\n", "\r\n", "\r"]))
    return (end.join(lines) + draw(st.sampled_from([end, ""]))).encode("utf-8", "surrogatepass")


def _outcome(call):
    try:
        return "table", call()
    except DataError as err:
        return "refused", (err.row, err.column)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=csv_layouts(), chunk=st.sampled_from([1, 7, 40, None]),
       numeric=st.sampled_from([None, ("flux", "soil_temp_c", "x", "days")]))
def test_column_parser_reads_what_the_line_reader_reads(content, chunk, numeric):
    """Every file is read as the line-by-line reader reads it (the reader for quoted fields that
    span lines): the same cells, numbers and file lines, or the same refusal, whatever the size
    of the pieces the text is parsed in."""
    import numpy as np
    import pandas as pd

    from data.chamber import _concat, _text_rows, consume_csv, read_text

    is_number = None if numeric is None else (lambda c: c in numeric)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.csv"
        path.write_bytes(content)
        kind, fast = _outcome(lambda: consume_csv(path, lambda p: _concat(list(p)),
                                                  chunk_bytes=chunk, numeric=is_number))
        text_kind, text = _outcome(lambda: _text_rows(path, read_text(path), numeric=is_number))
    assert kind == text_kind, (fast, text)
    if kind == "refused":
        assert fast == text
        return
    assert fast.header == text.header and fast.header_line == text.header_line
    np.testing.assert_array_equal(fast.lines, text.lines)
    assert list(fast.frame.columns) == list(text.frame.columns)
    for name in fast.frame.columns:
        assert fast.frame[name].astype(object).tolist() == text.frame[name].astype(object).tolist()
    for name in set(fast.numbers) | set(text.numbers):
        a, b = fast.number_column(name), text.number_column(name)
        np.testing.assert_array_equal(a.values, b.values)
        assert (a.not_number, a.infinite) == (b.not_number, b.infinite), name
    event("quoted" if b'"' in content else "plain")
