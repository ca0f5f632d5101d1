"""Generic chamber / literature CSV reader, CH4 flux unit conversion, and the CSV plumbing the
other readers share.

Chamber CSV format
==================
One comma-separated file (plain or ``.gz``, UTF-8, a byte-order mark is accepted), one header
line, one row per site and period. Column names are case-insensitive; blank lines are ignored, and
so are comment lines starting with ``#`` above the header. Below the header a line starting with
``#`` is a comment only when it has fewer fields than the header: a full row is data, so a site
may be named ``#3``. Columns not listed here (notes, references) are ignored.

Required columns
    ``site``         site name (text)
    ``date``         period start, ISO ``YYYY-MM-DD``
    ``flux``         CH4 flux, a number (+ emission, − uptake); an empty cell drops the row
    ``flux_unit``    the unit of ``flux`` on that row, e.g. ``mg CH4 m-2 h-1`` (see below)
    soil temperature, either ``soil_temp_c`` (°C) or ``soil_temp`` + ``soil_temp_unit``
                     (``C`` or ``K``); an empty cell drops the row
    ``ecosystem``    ``wetland``, ``grassland`` or another label (IGBP codes such as WET, GRA
                     are translated)
    ``latitude``, ``longitude``  decimal degrees (south and west negative)

Optional columns
    ``days``         period length in days (default 1; e.g. 30 for a monthly mean), 1…366
    ``method``       ``static_chamber`` (default), ``autochamber`` or ``eddy_covariance``
    ``n_sub``        number of measurements averaged into the row (default 1)
    ``wtd_m``        water-table position, m, positive above the soil surface
    ``swc``          volumetric soil water content, m3 m-3 (a fraction 0…1)
    ``ustar`` (m s-1), ``le`` (W m-2), ``nee``, ``gpp`` (µmol CO2 m-2 s-1)

Flux units
    ``<amount> [species] m-2 <time>-1`` where amount is ``pmol|nmol|umol|mmol|mol`` (any species)
    or ``ng|ug|mg|g|kg`` followed by ``CH4`` or ``CH4-C`` (mass of methane or of its carbon), and
    time is ``s|min|h|d|yr``; ``ha-1`` may stand for ``m-2``. ``µ``/``μ`` are accepted for ``u``,
    ``/m2/h`` for ``m-2 h-1``. Conversions use the constants of ``data.constants``:
    M(CH4) = 16.04246 g mol⁻¹, M(C) = 12.0107 g mol⁻¹ and 1 yr = 365.25 d.

Missing values
    An empty cell or ``NA``, ``NaN``, ``N/A``, ``#N/A``, ``null``, ``none``, ``-`` (any case) is
    missing. A number equal to a logger's missing-value code (−999, −9999, −99999, −999.9, −9999.9
    in any spelling, ``data.table.FILL_CODES``) is refused in every numeric column: a −999 flux
    would otherwise be read as uptake.

Every problem is a ``DataError`` naming the file, the 1-based file line and the column.

Reading. The file's line layout (header, blank and comment lines, quoting) is found on its bytes;
the rows then go through a column parser (pyarrow) a piece of ``CHUNK_BYTES`` at a time, numeric
columns straight to numbers and text columns as categories, so memory follows the columns, not
one Python string per cell. Text whose quoted fields span lines, or whose quotes stand inside a
field, is read line by line instead; both ways read a file the same (the property tests check it).
Rows with an empty flux or soil temperature are dropped and counted in ``Observations.dropped``;
everything else that is wrong (unknown unit, bad date, a date outside 1677-09-22 … 2262-04-11,
duplicate site-date, Kelvin-looking soil temperature, |flux| > 1000 nmol m⁻² s⁻¹ after
conversion, a missing-value code, …) is refused.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import gzip
import io
import itertools
import re
import warnings
import zlib
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from pandas.api.types import union_categoricals

from data.constants import (C_MOLAR_MASS, CH4_MOLAR_MASS, KELVIN, M2_PER, NMOL_PER_MOL, SECONDS_PER,
                            SI_PREFIX)
from data.errors import DataError
from data.table import (ABSURD_FLUX, DATE_RANGE_FIX, METHODS, NA_TOKENS, OPTIONAL_DRIVERS, REQUIRED,
                        Observations, check_soil_temperature, count_drop, date_range_problem,
                        dates_outside_range, fill_code_problem, is_fill_code, validate_observations)

KNOWN_FLUX_UNITS = ("nmol m-2 s-1", "umol m-2 s-1", "mg CH4 m-2 h-1", "ug CH4 m-2 h-1",
                    "mg CH4-C m-2 d-1", "g CH4 m-2 yr-1")
OUTPUT_COLUMNS = (*REQUIRED, *OPTIONAL_DRIVERS, "soil_temp_source")

# IGBP class codes and names → ecosystem labels used in flux classes.
IGBP_LABELS = {
    "WET": "wetland", "GRA": "grassland", "CRO": "cropland", "ENF": "evergreen_needleleaf_forest",
    "EBF": "evergreen_broadleaf_forest", "DNF": "deciduous_needleleaf_forest",
    "DBF": "deciduous_broadleaf_forest", "MF": "mixed_forest", "CSH": "closed_shrubland",
    "OSH": "open_shrubland", "WSA": "woody_savanna", "SAV": "savanna", "URB": "urban",
    "CVM": "cropland", "SNO": "snow_ice", "BSV": "barren", "WAT": "water",
}
_NAME_LABELS = {
    "wetlands": "wetland", "permanent_wetland": "wetland", "permanent_wetlands": "wetland",
    "grasslands": "grassland", "croplands": "cropland", "mixed_forests": "mixed_forest",
    "savannas": "savanna", "woody_savannas": "woody_savanna", "open_shrublands": "open_shrubland",
    "closed_shrublands": "closed_shrubland", "rice": "rice_paddy",
}


def ecosystem_label(value: object) -> str:
    """Lower-case ecosystem label from an IGBP code (``WET``), name (``Grassland``) or label."""
    text = str(value).strip()
    if not text or text.lower() in NA_TOKENS:
        return ""
    code = text.upper()
    if re.fullmatch(r"CRO\s*-\s*RICE", code):
        return "rice_paddy"
    code = code.split(" - ")[0].strip()
    if code in IGBP_LABELS:
        return IGBP_LABELS[code]
    label = re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")
    return _NAME_LABELS.get(label, label)


# ---------------------------------------------------------------- reading CSV text safely
# Text is handed to the column parser this many bytes at a time (cut at a line end), so the
# parser's string stage holds one piece whatever the size of the file. Read at call time.
CHUNK_BYTES = 32 << 20
# Bytes that may start a line the reader skips (blank, whitespace-only or a '#' comment):
# ASCII whitespace, '#', and the lead bytes of the multi-byte UTF-8 whitespace characters.
_SKIPPABLE_START = np.array([9, 10, 11, 12, 13, 28, 29, 30, 31, 32, ord("#"), 0xC2, 0xE1, 0xE2,
                             0xE3], dtype=np.uint8)
_BOM = b"\xef\xbb\xbf"
# Every spelling of the NA tokens up to letter case: the column parser compares cells exactly.
# A token with blanks around it fails there and is read by the text path, which strips.
_NA_SPELLINGS = sorted({"".join(p) for token in NA_TOKENS
                        for p in itertools.product(*({c.lower(), c.upper()} for c in token))})


@dataclasses.dataclass
class NumberColumn:
    """A column read as numbers: ``values`` (NaN where a cell is missing or not a number) and the
    first cell that is not a number and the first infinite one, as (row position, stripped
    text). ``parse_numbers`` decides which of them is refused."""

    values: np.ndarray
    not_number: tuple[int, str] | None = None
    infinite: tuple[int, str] | None = None

    def __post_init__(self):
        # parse_numbers hands ``values`` out without a copy: nobody may change them in place
        self.values.flags.writeable = False

    @classmethod
    def from_text(cls, strings: pd.Series) -> "NumberColumn":
        """Text cells → numbers; an NA token (``NA_TOKENS``, any case, blanks stripped) is missing."""
        codes, distinct = _distinct(strings)
        text = pd.Series(distinct, dtype=object).astype(str).str.strip()
        values = np.array(pd.to_numeric(text, errors="coerce"), dtype=float)
        na = text.str.lower().isin(NA_TOKENS).to_numpy()
        out = values[codes]
        return cls(out, _first(np.isnan(values) & ~na, codes, text),
                   _first(np.isinf(values), codes, text))


def _distinct(strings: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(code of every row, distinct values): work done once per distinct spelling, not per row."""
    if isinstance(strings.dtype, pd.CategoricalDtype):
        return strings.cat.codes.to_numpy(), np.asarray(strings.cat.categories, dtype=object)
    codes, distinct = pd.factorize(strings.astype(object).to_numpy(), use_na_sentinel=False)
    return codes, np.asarray(distinct, dtype=object)


def _first(flag: np.ndarray, codes: np.ndarray, text: pd.Series) -> tuple[int, str] | None:
    """(first row whose distinct value is flagged, its text), or None."""
    if not flag.any():
        return None
    i = int(np.flatnonzero(flag[codes])[0])
    return i, str(text.iloc[codes[i]])


def map_text(table: "CsvTable", column: str,
             func: Callable[[pd.Series], object]) -> tuple[np.ndarray, np.ndarray]:
    """(code of every row, ``func`` applied to the distinct cells): ``func`` maps a Series of
    strings to values of the same length; ``values[codes]`` spreads them over the rows."""
    codes, distinct = _distinct(table.frame[column])
    return codes, np.asarray(func(pd.Series(distinct, dtype=object)))


def text_codes(t: "CsvTable", column: str) -> tuple[np.ndarray, np.ndarray]:
    """(code of every row, distinct values) of a text column, blanks around the values removed."""
    codes, stripped = map_text(t, column, lambda s: s.astype(str).str.strip())
    recode, values = pd.factorize(stripped.astype(object), use_na_sentinel=False)
    return recode[codes], np.asarray(values, dtype=object)


def text_array(values: np.ndarray, codes: np.ndarray):
    """The column ``values[codes]`` in the dtype pandas gives text, built without a Python
    string per row."""
    return pd.Series(values, dtype=None if len(values) else object).array.take(codes)


@dataclasses.dataclass
class CsvTable:
    """A CSV with the file line of every row: ``frame`` holds the text columns (strings;
    categorical when read with ``numeric=``), ``numbers`` the columns read as numbers, and
    ``lines[i]`` is the 1-based file line of row i."""

    path: Path
    frame: pd.DataFrame
    lines: np.ndarray
    header: list[str]
    header_line: int = 1
    numbers: dict[str, NumberColumn] = dataclasses.field(default_factory=dict)

    def line(self, position: int) -> int:
        return int(self.lines[position])

    def __len__(self) -> int:
        return len(self.lines)

    def number_column(self, column: str) -> NumberColumn:
        if column not in self.numbers:
            self.numbers[column] = NumberColumn.from_text(self.frame[column])
        return self.numbers[column]


def _file_bytes(path: Path) -> bytes:
    """The bytes of a plain or gzip-compressed file; any unreadable content is a DataError."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(path, None, None, "no such file", "check the path") from None
    except IsADirectoryError:
        raise DataError(path, None, None, "is a folder, not a file", "give a file path") from None
    except OSError as exc:
        raise DataError(path, None, None, f"cannot read the file ({exc.strerror or exc})",
                        "check the path and its permissions") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
            raise DataError(path, None, None, f"gzip data is truncated or corrupt ({exc})",
                            "download or copy the file again") from None
    elif path.name.lower().endswith(".gz"):
        raise DataError(path, None, None, "the name ends in .gz but the content is not gzip",
                        "rename the file or compress it with gzip")
    if raw[:4] == b"PK\x03\x04":
        raise DataError(path, None, None, "this is a zip or Excel file, not CSV text",
                        "unzip it, or export the sheet as comma-separated values (CSV)")
    if not raw.isascii():
        try:
            decoder = codecs.getincrementaldecoder("utf-8")()
            for start in range(0, len(raw), CHUNK_BYTES):  # validated a piece at a time
                decoder.decode(raw[start:start + CHUNK_BYTES], final=start + CHUNK_BYTES >= len(raw))
        except UnicodeDecodeError:
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                line = raw[:exc.start].count(b"\n") + 1
                raise DataError(path, line, None, "the file is not UTF-8 text",
                                "save it as UTF-8 CSV") from None
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise DataError(path, raw.count(b"\n", 0, nul) + 1, None,
                        "the file contains NUL bytes (binary data)",
                        "export it as plain comma-separated text")
    return raw


def read_text(path: str | Path) -> str:
    """The text of a plain or gzip-compressed file; any unreadable content is a DataError."""
    return _file_bytes(Path(path)).decode("utf-8-sig").lstrip("\ufeff")


def _csv_bytes(path: Path) -> bytes:
    """File bytes as ``read_text`` checks them, without byte-order marks, lines ending in LF."""
    raw = _file_bytes(path)
    start = 0
    while raw.startswith(_BOM, start):
        start += len(_BOM)
    if start:
        raw = raw[start:]
    if b"\r" in raw:
        raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return raw


def read_csv_strings(path: str | Path, *, lower: bool = False,
                     columns: Callable[[list[str]], Iterable[str]] | None = None,
                     expected: Iterable[str] = (),
                     numeric: Callable[[str], bool] | None = None) -> CsvTable:
    """Read a comma-separated file, keeping the file line of every row.

    ``columns(header)`` picks the columns to keep (default: all). ``lower`` lower-cases names.
    ``expected`` names columns the caller needs; they are listed when the file looks wrongly
    delimited. Columns are strings, unless ``numeric`` is given: then the columns it accepts are
    read as numbers (``CsvTable.numbers``) and the others as categorical text.
    """
    return consume_csv(path, lambda pieces: _concat(list(pieces)), lower=lower, columns=columns,
                       expected=expected, numeric=numeric)


class _TextReaderNeeded(Exception):
    """The column parser disagrees with the line layout after the first piece."""


def consume_csv(path: str | Path, consume: Callable[[Iterable[CsvTable]], object], **options):
    """``consume(iter_csv(path, **options))``; should the column parser disagree with the line
    layout of a later piece, ``consume`` runs again on the whole file read line by line."""
    try:
        return consume(iter_csv(path, **options))
    except _TextReaderNeeded:
        options.pop("chunk_bytes", None)
        return consume(iter([_text_rows(Path(path), read_text(path), **options)]))


def iter_csv(path: str | Path, *, lower: bool = False,
             columns: Callable[[list[str]], Iterable[str]] | None = None,
             expected: Iterable[str] = (), numeric: Callable[[str], bool] | None = None,
             chunk_bytes: int | None = None):
    """The rows of a comma-separated file (as ``read_csv_strings``) a piece of about
    ``chunk_bytes`` (default ``CHUNK_BYTES``) of text at a time: CsvTables whose positions count
    from the piece's first row and whose ``lines`` are lines of the file. Header, delimiter and
    rows with more fields than the header are checked as the pieces are read. Use it through
    ``consume_csv``."""
    path = Path(path)
    raw = _csv_bytes(path)
    text_options = dict(lower=lower, columns=columns, expected=expected, numeric=numeric)
    layout = _layout(path, raw)
    if layout is None:  # quoted fields across lines or unusual quoting: the line-by-line reader
        yield _text_rows(path, raw.decode("utf-8"), **text_options)
        return
    header_text, header_line, (buffer, start, end), lines = layout
    header = _header(path, header_text, header_line, lower, expected, has_rows=len(lines) > 0)
    wanted = set(header if columns is None else columns(header))
    wanted = [c for c in header if c in wanted]  # in file order, as the text reader keeps them
    step = chunk_bytes or CHUNK_BYTES
    first = 0
    while start < end:
        stop = end if start + step >= end else buffer.find(b"\n", start + step, end) + 1 or end
        rows = buffer.count(b"\n", start, stop) + (buffer[stop - 1:stop] != b"\n")
        piece = _parse_piece(path, memoryview(buffer)[start:stop], header, header_line, wanted,
                             numeric, lines[first:first + rows])
        if piece is None and first == 0:
            yield _text_rows(path, raw.decode("utf-8"), **text_options)
            return
        if piece is None:
            raise _TextReaderNeeded
        yield piece
        first += rows
        start = stop


def _positions(buf: np.ndarray, byte: int) -> np.ndarray:
    """Offsets of ``byte`` in ``buf``, found a piece at a time (no file-sized boolean array)."""
    step = 1 << 24
    return np.concatenate([np.empty(0, dtype=np.int64)] + [
        np.flatnonzero(buf[a:a + step] == byte) + a for a in range(0, buf.size, step)])


def _plain_quoting(buf: np.ndarray, newlines: np.ndarray) -> bool:
    """Whether every '"' opens or closes a field (stands next to a comma, a line end or another
    '"') and every line holds an even number of them: then no quoted field spans lines and the
    column parser reads the quotes as the text reader does."""
    step = 1 << 22
    boundary = np.array([44, 10, 34], dtype=np.uint8)
    parity, k = 0, 0
    for a in range(0, buf.size, step):
        piece = buf[a:a + step]
        quotes = np.flatnonzero(piece == 34) + a
        before = buf[np.maximum(quotes - 1, 0)]
        after = buf[np.minimum(quotes + 1, buf.size - 1)]
        edge = (quotes == 0) | (quotes == buf.size - 1) | np.isin(before, boundary) | np.isin(after, boundary)
        if not edge.all():
            return False
        # a running count modulo 256 keeps its parity
        counts = np.cumsum(piece == 34, dtype=np.uint8)
        j = np.searchsorted(newlines, a + piece.size, side="left")
        if ((counts[newlines[k:j] - a] + parity) & 1).any():
            return False
        parity = (parity + int(counts[-1])) & 1
        k = j
    return parity == 0


def _layout(path: Path, raw: bytes):
    """Where the header and the data rows are: (header text, header line, (buffer, start, end) of
    the data rows' text, file line of every data row); None when quotes span lines.

    Lines are skipped as the text reader skips them: blank lines, '#' lines above the header,
    and '#' lines below it with fewer fields than the header (a full row is data: a site '#3')."""
    buf = np.frombuffer(raw, dtype=np.uint8)
    newlines = _positions(buf, 10)
    if b'"' in raw and not _plain_quoting(buf, newlines):
        return None
    starts = np.concatenate([[0], newlines + 1])
    ends = np.concatenate([newlines, [buf.size]])
    lead = np.full(starts.size, 10, dtype=np.uint8)  # an empty line counts as starting with LF
    filled = starts < ends
    lead[filled] = buf[starts[filled]]
    maybe_skipped = np.isin(lead, _SKIPPABLE_START)

    def text(k: int) -> str:
        return raw[starts[k]:ends[k]].decode("utf-8")

    head = 0
    while head < starts.size and maybe_skipped[head] and (
            not text(head).strip() or text(head).strip().startswith("#")):
        head += 1
    if head == starts.size:
        raise DataError(path, None, None, "the file is empty", "give a CSV file with a header line "
                        "and data rows")
    header_text = text(head)
    width = _field_count(header_text)
    skipped = []
    for k in np.flatnonzero(maybe_skipped[head + 1:]) + head + 1:
        stripped = text(k).strip()
        if not stripped or (stripped.startswith("#") and _field_count(text(k)) < width):
            skipped.append(k)
    kept = np.setdiff1d(np.arange(head + 1, starts.size), skipped, assume_unique=True)
    if not kept.size:
        data = (raw, 0, 0)
    else:
        # runs of consecutive kept lines; one run is a view of the file, several are joined
        breaks = np.flatnonzero(np.diff(kept) > 1)
        run_first = np.concatenate([[kept[0]], kept[breaks + 1]])
        run_last = np.concatenate([kept[breaks], [kept[-1]]])
        if run_first.size == 1:
            data = (raw, int(starts[run_first[0]]), int(min(ends[run_last[0]] + 1, buf.size)))
        else:
            joined = b"\n".join(raw[starts[a]:ends[b]] for a, b in zip(run_first, run_last)) + b"\n"
            data = (joined, 0, len(joined))
    return header_text, head + 1, data, kept + 1


def _header(path: Path, header_text: str, header_line: int, lower: bool, expected: Iterable[str],
            has_rows: bool) -> list[str]:
    """The column names of a header line; a DataError for a header the readers cannot use."""
    try:
        header = next(csv.reader([header_text]))
    except csv.Error as exc:
        raise DataError(path, header_line, None, f"the header line cannot be parsed ({exc})",
                        "write one comma-separated header line") from None
    header = [h.strip().lstrip("\ufeff").strip() for h in header]
    if lower:
        header = [h.lower() for h in header]
    # spreadsheets leave empty header cells after the last column; such columns are unnamed
    header = [h or f"unnamed_{i + 1}" for i, h in enumerate(header)]
    need = ", ".join(expected)
    if len(header) == 1:
        sep = next((s for s in (";", "\t", "|") if s in header_text), None)
        if sep is not None:
            shown = {"\t": "tab"}.get(sep, repr(sep))
            raise DataError(path, header_line, None,
                            f"the file is {shown}-separated, not comma-separated",
                            "save it as comma-separated values" + (f" with columns {need}" if need else ""))
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DataError(path, header_line, name, f"column '{name}' appears twice in the header",
                            "rename or remove one of them")
        seen.add(name)
    if not has_rows:
        raise DataError(path, header_line, None, "the file has a header but no data rows",
                        "add data rows below the header")
    return header


def _long_row(path: Path, line: int | None) -> DataError:
    return DataError(path, line, None, "the row has more fields than the header",
                     "check the delimiter and quoting of that line")


def _parse_piece(path: Path, text: memoryview, header: list[str], header_line: int,
                 wanted: list[str], numeric: Callable[[str], bool] | None,
                 lines: np.ndarray) -> CsvTable | None:
    """One piece of data rows (every line a row) through the column parser; None if its rows do
    not match the lines (left to the text reader)."""
    number_cols = [c for c in wanted if numeric is not None and numeric(c)]
    as_text = set()  # numeric columns whose cells the parser refused: read as text, then converted
    while True:
        short = []
        try:
            table = _arrow_read(text, header, wanted, number_cols, as_text, numeric is not None,
                                lambda row: short.append(row.actual_columns) or "skip")
        except pa.ArrowInvalid as exc:
            m = re.match(r"In CSV column #(\d+): CSV conversion error", str(exc))
            if not m or header[int(m.group(1))] not in number_cols or header[int(m.group(1))] in as_text:
                return None
            as_text.add(header[int(m.group(1))])
            continue
        if not short:
            break
        counts = [_field_count(line) for line in bytes(text).decode("utf-8").split("\n")]
        counts = counts[:len(lines)]
        long = next((i for i, n in enumerate(counts) if n > len(header)), None)
        if long is not None:
            raise _long_row(path, int(lines[long]))
        # rows with fewer fields than the header: the missing trailing cells are empty
        padded = [line + "," * (len(header) - n)
                  for line, n in zip(bytes(text).decode("utf-8").split("\n"), counts)]
        text = memoryview("\n".join(padded).encode("utf-8"))
    if table.num_rows != len(lines):
        return None
    frame = pd.DataFrame(index=pd.RangeIndex(table.num_rows))
    numbers = {}
    for name in wanted:
        column = table.column(name)
        if name in number_cols and name not in as_text:
            numbers[name] = _arrow_numbers(column, lambda: _arrow_read(
                text, header, [name], [], set(), False, None).column(name))
        elif name in number_cols:
            numbers[name] = NumberColumn.from_text(column.to_pandas())
        else:
            strings = column.to_pandas()
            frame[name] = strings if numeric is not None else strings.astype(object)
    return CsvTable(path=path, frame=frame, lines=np.asarray(lines, dtype=np.int64), header=header,
                    header_line=header_line, numbers=numbers)


def _arrow_read(text: memoryview, header: list[str], wanted: list[str], number_cols: list[str],
                as_text: set[str], categorical: bool, invalid_row):
    text_type = pa.dictionary(pa.int32(), pa.string()) if categorical else pa.string()
    types = {c: (pa.float64() if c in number_cols and c not in as_text else text_type) for c in wanted}
    return pa_csv.read_csv(
        pa.py_buffer(text),
        read_options=pa_csv.ReadOptions(column_names=header),
        parse_options=pa_csv.ParseOptions(delimiter=",", quote_char='"', double_quote=True,
                                          escape_char=False, newlines_in_values=False,
                                          ignore_empty_lines=False, invalid_row_handler=invalid_row),
        convert_options=pa_csv.ConvertOptions(column_types=types, include_columns=wanted,
                                              null_values=_NA_SPELLINGS, strings_can_be_null=False,
                                              quoted_strings_can_be_null=True))


def _arrow_numbers(column, as_strings: Callable[[], object]) -> NumberColumn:
    """A parsed float column → NumberColumn; cells parsed as NaN (``-nan``) are not numbers, and
    the text of the first such cell and of the first infinite one come from ``as_strings()``."""
    values = column.to_numpy()
    nan = np.isnan(values)
    not_number = nan & ~column.is_null().to_numpy(zero_copy_only=False) if nan.any() else nan
    infinite = np.isinf(values)
    if not (not_number.any() or infinite.any()):
        return NumberColumn(values)
    strings = as_strings()

    def first(flag):
        if not flag.any():
            return None
        i = int(np.flatnonzero(flag)[0])
        return i, str(strings[i].as_py()).strip()

    values = values.copy()
    values[not_number] = np.nan
    return NumberColumn(values, first(not_number), first(infinite))


def _concat(parts: list[CsvTable]) -> CsvTable:
    """Pieces of one file (from ``iter_csv``) as one table."""
    if len(parts) == 1:
        return parts[0]
    offsets = np.cumsum([0] + [len(p) for p in parts[:-1]])
    frame = pd.DataFrame(index=pd.RangeIndex(int(offsets[-1]) + len(parts[-1])))
    for name in parts[0].frame.columns:
        cols = [p.frame[name] for p in parts]
        frame[name] = (pd.Series(union_categoricals(cols, ignore_order=True))
                       if isinstance(cols[0].dtype, pd.CategoricalDtype)
                       else pd.concat(cols, ignore_index=True))
    numbers = {}
    for name in parts[0].numbers:
        cols = [p.numbers[name] for p in parts]

        def first(attr):
            return next(((int(o) + i, s) for o, c in zip(offsets, cols)
                         if (f := getattr(c, attr)) is not None for i, s in [f]), None)

        numbers[name] = NumberColumn(np.concatenate([c.values for c in cols]), first("not_number"),
                                     first("infinite"))
    first_part = parts[0]
    return CsvTable(path=first_part.path, frame=frame,
                    lines=np.concatenate([p.lines for p in parts]), header=first_part.header,
                    header_line=first_part.header_line, numbers=numbers)


def _text_rows(path: Path, text: str, *, lower: bool = False,
               columns: Callable[[list[str]], Iterable[str]] | None = None,
               expected: Iterable[str] = (), numeric: Callable[[str], bool] | None = None) -> CsvTable:
    """The line-by-line reader, for text whose quoted fields span lines or whose quotes the
    column parser may read differently."""
    text = text.lstrip("\ufeff")
    kept: list[str] = []
    numbers: list[int] = []
    width = 0  # fields of the header, once it is found
    for number, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            # Above the header a comment; below it, a row as wide as the header is data (a site
            # named '#3'), a shorter line a comment.
            if not kept or _field_count(line) < width:
                continue
        kept.append(line)
        numbers.append(number)
        if len(kept) == 1:
            width = _field_count(line)
    if not kept:
        raise DataError(path, None, None, "the file is empty", "give a CSV file with a header line "
                        "and data rows")
    header = _header(path, kept[0], numbers[0], lower, expected, has_rows=len(kept) > 1)
    seen = {name: i for i, name in enumerate(header)}
    long_row = _first_long_row(kept, numbers, len(header))
    if long_row is not None:
        raise _long_row(path, long_row)
    wanted = list(header) if columns is None else [c for c in columns(header) if c in seen]
    positions = sorted(seen[c] for c in wanted)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(io.StringIO("\n".join(kept)), header=0, usecols=positions,
                                dtype=str, keep_default_na=False, na_filter=False,
                                index_col=False, engine="c")
    except pd.errors.ParserWarning:
        raise _long_row(path, _first_long_row(kept, numbers, len(header))) from None
    except pd.errors.ParserError as exc:
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if m:
            at = int(m.group(2))
            line = numbers[at - 1] if 0 < at <= len(numbers) else None
            raise DataError(path, line, None, f"the row has {m.group(3)} fields, the header has "
                            f"{m.group(1)}", "check the delimiter and quoting of that line") from None
        raise DataError(path, None, None, f"the CSV cannot be parsed ({str(exc).strip()[:120]})",
                        "check the quoting and delimiters") from None
    except (ValueError, csv.Error, OverflowError) as exc:
        raise DataError(path, None, None, f"the CSV cannot be parsed ({str(exc).strip()[:120]})",
                        "save it as plain comma-separated values") from None
    frame.columns = [header[p] for p in positions]
    frame = frame.fillna("").astype(object).reset_index(drop=True)
    if len(frame) == len(kept) - 1:
        lines = np.asarray(numbers[1:], dtype=np.int64)
    else:  # quoted line breaks inside fields: fall back to counting rows
        lines = np.arange(len(frame), dtype=np.int64) + numbers[0] + 1
    table = CsvTable(path=path, frame=frame, lines=lines, header=header, header_line=numbers[0])
    if numeric is not None:
        for name in list(frame.columns):
            if numeric(name):
                table.numbers[name] = NumberColumn.from_text(frame.pop(name))
            else:
                frame[name] = frame[name].astype("category")
    return table


def _field_count(line: str) -> int:
    """Number of comma-separated fields of one line (quotes respected)."""
    try:
        return len(next(csv.reader([line])))
    except (csv.Error, StopIteration):
        return line.count(",") + 1


def _first_long_row(kept: list[str], numbers: list[int], width: int) -> int | None:
    """File line of the first data row with more fields than the header (None if none)."""
    if not any('"' in line for line in kept):  # no quoting: counting commas is exact and fast
        for line, number in zip(kept[1:], numbers[1:]):
            if line.count(",") >= width:
                return number
        return None
    try:
        for row, number in zip(csv.reader(kept[1:]), numbers[1:]):
            if len(row) > width:
                return number
    except csv.Error:
        return None
    return None


FILL_FIX = "leave the cell empty (or NA) where there is no value"


def parse_numbers(table: CsvTable, column: str, *, missing_code: float | None = None,
                  what: str = "a number", infinite_missing: bool = False,
                  fill_fix: str = FILL_FIX) -> np.ndarray:
    """Column as floats: NA tokens → NaN, ``missing_code`` → NaN, anything else → DataError.

    The other missing-value codes (``data.table.FILL_CODES``) are refused with ``fill_fix`` as the
    advice, never read as data. ``infinite_missing`` reads ``inf``/``-inf`` as missing instead of
    refusing them. The array is read-only (it may be the table's own).
    """
    numbers = table.number_column(column)
    bad = [b for b in (numbers.not_number, None if infinite_missing else numbers.infinite) if b]
    if bad:
        i, text = min(bad)
        raise DataError(table.path, table.line(i), column, f"value {text[:30]!r} is not {what}",
                        "write a plain number with '.' as decimal point, or leave the cell empty")
    values = numbers.values  # copied only where cells become missing (a column can be file-sized)
    if infinite_missing and np.isinf(values).any():
        values = np.where(np.isinf(values), np.nan, values)
    if missing_code is not None and (values == missing_code).any():
        values = np.where(values == missing_code, np.nan, values)
    fill = is_fill_code(values)
    if fill.any():
        i = int(np.flatnonzero(fill)[0])
        raise DataError(table.path, table.line(i), column, fill_code_problem(values[i]), fill_fix)
    return values


def require_columns(table: CsvTable, required: Iterable[str], listing: str) -> None:
    """DataError naming the first missing column and listing what the format needs."""
    missing = [c for c in required if c not in table.header]
    if missing:
        raise DataError(table.path, table.header_line, missing[0],
                        f"required column '{missing[0]}' is missing"
                        + (f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else ""),
                        f"the file needs columns {listing}")


def empty_table() -> pd.DataFrame:
    """A canonical table with no rows and the reader output columns."""
    table = pd.DataFrame({c: pd.Series(dtype=float) for c in OUTPUT_COLUMNS})
    for c in ("site", "ecosystem", "method", "soil_temp_source"):
        table[c] = table[c].astype(object)
    table["date"] = pd.Series(dtype="datetime64[ns]")
    return table


# ---------------------------------------------------------------- flux units
_UNIT_RE = re.compile(
    r"(?P<prefix>[pnumk]?)(?P<base>mol|g)\s*(?P<species>ch4-c|c-ch4|ch4)?\s*(?P<area>m-2|ha-1)\s*"
    r"(?P<time>s|sec|min|h|hr|d|day|yr|y|year|a)-1")
_TIME_ALIASES = {"sec": "s", "hr": "h", "day": "d", "y": "yr", "year": "yr", "a": "yr"}


def _normalise_unit(unit: str) -> str:
    u = str(unit).strip().lower()
    for a, b in (("µ", "u"), ("μ", "u"), ("⁻", "-"), ("−", "-"), ("²", "2"), ("¹", "1"),
                 ("^", ""), ("·", " "), ("*", " "), ("₄", "4"), ("ch₄", "ch4")):
        u = u.replace(a, b)
    u = re.sub(r"\s*/\s*m\s*2", " m-2", u)
    u = re.sub(r"\s*/\s*ha\b", " ha-1", u)
    u = re.sub(r"\s*/\s*(s|sec|min|h|hr|d|day|yr|y|a)\b", r" \1-1", u)
    u = re.sub(r"ch4\s*-\s*c\b", "ch4-c", u)
    u = re.sub(r"\bc\s*-\s*ch4", "c-ch4", u)
    return re.sub(r"\s+", " ", u).strip()


def flux_unit_factor(unit: str) -> float:
    """Multiplier taking a CH4 flux in ``unit`` to nmol CH4 m⁻² s⁻¹.

    Raises DataError (without file context) for a unit it does not know.
    """
    m = _UNIT_RE.fullmatch(_normalise_unit(unit))
    if m is None or (m["base"] == "g" and m["species"] is None):
        why = "mass units must say CH4 or CH4-C" if m is not None else "unknown flux unit"
        raise DataError(None, None, "flux_unit", f"{why} {str(unit)[:40]!r}",
                        f"use one of {', '.join(KNOWN_FLUX_UNITS)} (or another "
                        "'<n|u|m>mol or <u|m>g CH4[-C] m-2 <s|h|d|yr>-1')")
    amount = SI_PREFIX[m["prefix"]]
    if m["base"] == "g":  # grams of CH4 or of its carbon → moles of CH4
        amount /= C_MOLAR_MASS if m["species"] in ("ch4-c", "c-ch4") else CH4_MOLAR_MASS
    seconds = SECONDS_PER[_TIME_ALIASES.get(m["time"], m["time"])]
    return amount * NMOL_PER_MOL / M2_PER["m2" if m["area"] == "m-2" else "ha"] / seconds


def convert_flux(values, unit: str, *, file: str | Path | None = None, row: int | None = None,
                 column: str = "flux_unit") -> np.ndarray:
    """CH4 flux ``values`` in ``unit`` → nmol CH4 m⁻² s⁻¹ (array of floats)."""
    try:
        factor = flux_unit_factor(unit)
    except DataError as exc:
        raise DataError(file, row, column, exc.problem, exc.fix) from None
    return np.asarray(values, dtype=float) * factor


_TEMP_UNITS = {"c": "C", "°c": "C", "degc": "C", "deg c": "C", "celsius": "C", "k": "K",
               "kelvin": "K"}


# ---------------------------------------------------------------- the chamber CSV reader
_CHAMBER_REQUIRED = ("site", "date", "flux", "flux_unit", "ecosystem", "latitude", "longitude")
_CHAMBER_NUMBERS = ("flux", "soil_temp_c", "soil_temp", "latitude", "longitude", "days", "n_sub",
                    *OPTIONAL_DRIVERS)
_CHAMBER_COLUMNS = (*_CHAMBER_REQUIRED, *_CHAMBER_NUMBERS, "soil_temp_unit", "method")
_CHAMBER_LISTING = ("site, date (YYYY-MM-DD), flux, flux_unit, soil_temp_c (or soil_temp + "
                    "soil_temp_unit), ecosystem, latitude, longitude; optional days, method, n_sub, "
                    + ", ".join(OPTIONAL_DRIVERS))


def read_chamber_csv(path: str | Path) -> Observations:
    """Read a chamber / literature CSV (format in the module docstring) into Observations."""
    path = Path(path)
    t = read_csv_strings(path, lower=True, expected=_CHAMBER_REQUIRED,
                         columns=lambda header: [c for c in header if c in _CHAMBER_COLUMNS],
                         numeric=lambda c: c in _CHAMBER_NUMBERS)
    require_columns(t, _CHAMBER_REQUIRED, _CHAMBER_LISTING)
    has_c, has_raw = "soil_temp_c" in t.header, "soil_temp" in t.header
    if has_c and has_raw:
        raise DataError(path, t.header_line, "soil_temp", "both soil_temp_c and soil_temp are given",
                        "keep one soil-temperature column")
    if not has_c and not has_raw:
        raise DataError(path, t.header_line, "soil_temp_c", "required column 'soil_temp_c' is missing",
                        f"the file needs columns {_CHAMBER_LISTING}")
    if has_raw and "soil_temp_unit" not in t.header:
        raise DataError(path, t.header_line, "soil_temp_unit",
                        "column soil_temp has no soil_temp_unit column",
                        "add soil_temp_unit (C or K) or rename the column soil_temp_c")
    f = t.frame
    n = len(t)
    dropped: dict[str, int] = {}

    site_code, site_names = text_codes(t, "site")
    _refuse(t, (site_names == "")[site_code], "site", lambda i: "site is empty",
            "give the site name on every row")
    codes, day = map_text(t, "date", lambda s: pd.to_datetime(s.astype(str).str.strip(),
                                                               format="%Y-%m-%d", errors="coerce"))
    date = pd.DatetimeIndex(day[codes])
    _refuse(t, date.isna(), "date", lambda i: f"date {str(f['date'].iloc[i])[:30]!r} "
            "cannot be read", "write dates as YYYY-MM-DD (ISO 8601)")
    _refuse(t, dates_outside_range(date), "date", lambda i: date_range_problem(date[i]),
            DATE_RANGE_FIX)
    # site-dates compared as integer codes: the same test as on the names, without hashing them
    dup = pd.DataFrame({"s": site_code, "d": date.asi8}).duplicated(keep="first").to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        first = int(np.flatnonzero((site_code == site_code[i]) & (date.asi8 == date.asi8[i]))[0])
        raise DataError(path, t.line(i), "date", f"duplicate site-date {site_names[site_code[i]]} "
                        f"{date[i]:%Y-%m-%d} (also on line {t.line(first)})",
                        "keep one row per site and date (average repeated measurements first)")

    days = _integer_column(t, "days", 1, 1, 366, "the period length in days (1…366)")
    _refuse(t, dates_outside_range(date, days), "days", lambda i: f"the {days[i]}-day period from "
            f"{date[i]:%Y-%m-%d} ends after {pd.Timestamp.max:%Y-%m-%d}, the last date the "
            "tables can hold", DATE_RANGE_FIX)
    date = pd.DatetimeIndex(day.astype("datetime64[ns]")[codes])  # in range: the table's unit
    n_sub = _integer_column(t, "n_sub", 1, 1, None, "the number of measurements averaged (≥ 1)")

    flux_raw = parse_numbers(t, "flux")
    given = np.isfinite(flux_raw)
    unit_code, unit_names = text_codes(t, "flux_unit")
    _refuse(t, given & (unit_names == "")[unit_code], "flux_unit", lambda i: "flux has no unit",
            f"give flux_unit on every row, e.g. {', '.join(KNOWN_FLUX_UNITS)}")
    flux = np.full(n, np.nan)
    for code in pd.unique(unit_code[given]):
        rows = (unit_code == code) & given
        first = int(np.flatnonzero(rows)[0])
        flux[rows] = convert_flux(flux_raw[rows], unit_names[code], file=path, row=t.line(first))
    _refuse(t, np.abs(flux) > ABSURD_FLUX, "flux",
            lambda i: f"|flux| = {abs(flux[i]):.4g} nmol m-2 s-1 after converting from "
                      f"'{unit_names[unit_code[i]]}' is implausibly large",
            "check the value and its flux_unit")

    if has_c:
        temp_col = "soil_temp_c"
        temp = parse_numbers(t, temp_col)
    else:
        temp_col = "soil_temp"
        temp = parse_numbers(t, temp_col)
        codes, unit = map_text(t, "soil_temp_unit", lambda s: s.astype(str).str.strip().str.lower()
                               .map(_TEMP_UNITS).to_numpy(dtype=object))
        known = unit[codes]
        _refuse(t, np.isfinite(temp) & pd.isna(known), "soil_temp_unit",
                lambda i: f"unknown soil temperature unit {str(f['soil_temp_unit'].iloc[i])[:20]!r}",
                "use C or K")
        temp = np.where(known == "K", temp - KELVIN, temp)
    ok_t = np.isfinite(temp)
    check_soil_temperature(pd.Series(temp[ok_t]), path, temp_col, header_lines=1,
                           positions=t.lines[ok_t] - 2)

    eco_code, eco = map_text(t, "ecosystem", lambda s: s.map(ecosystem_label))
    _refuse(t, (eco == "")[eco_code], "ecosystem", lambda i: "ecosystem is empty",
            "give an ecosystem label such as wetland or grassland")
    if "method" in t.header:
        method_code, method = map_text(t, "method", _method_label)
        _refuse(t, ~np.isin(method, METHODS)[method_code], "method",
                lambda i: f"unknown method {str(f['method'].iloc[i])[:30]!r}",
                f"use one of {', '.join(METHODS)}")
    else:
        method_code, method = np.zeros(n, dtype=np.int8), np.array(["static_chamber"], dtype=object)
    lat = _coordinate(t, "latitude", 90.0)
    lon = _coordinate(t, "longitude", 180.0)
    drivers = {d: parse_numbers(t, d) if d in t.header else None for d in OPTIONAL_DRIVERS}
    swc = drivers["swc"]
    if swc is not None:
        _refuse(t, (swc < 0) | (swc > 1), "swc", lambda i: f"swc {swc[i]:g} is outside 0…1",
                "give soil water content as a fraction (m3 m-3): divide percent by 100")

    keep = np.ones(n, dtype=bool)
    missing_flux = ~np.isfinite(flux)
    count_drop(dropped, "flux missing", int(missing_flux.sum()))
    keep &= ~missing_flux
    missing_t = keep & ~ok_t
    count_drop(dropped, "soil temperature missing", int(missing_t.sum()))
    keep &= ok_t
    if n and not keep.any():
        column = "flux" if missing_flux.all() else temp_col
        raise DataError(path, 1, column, f"column '{column}' has no value on any row, so no row is usable",
                        "fill the column (or remove the file from the analysis)")
    # the table is built once, from the kept rows only (a copy per step would be file-sized)
    rows = slice(None) if keep.all() else np.flatnonzero(keep)
    columns = {"site": text_array(site_names, site_code[rows]), "date": date[rows],
               "days": days[rows], "flux": flux[rows], "soil_temp_c": temp[rows],
               "ecosystem": text_array(eco, eco_code[rows]),
               "method": text_array(method, method_code[rows]), "latitude": lat[rows],
               "longitude": lon[rows], "n_sub": n_sub[rows]}
    for d, values in drivers.items():
        columns[d] = values[rows] if values is not None else np.full(len(date[rows]), np.nan)
    columns["soil_temp_source"] = text_array(np.array([temp_col], dtype=object),
                                             np.zeros(len(date[rows]), dtype=np.int8))
    # only the table's columns stay alive while it is validated
    del t, f, drivers, flux_raw, temp, lat, lon, site_code, unit_code, codes, day, date, days, n_sub
    table = validate_observations(pd.DataFrame(columns, copy=False), path)
    return Observations(table=table, dropped=dropped, sources=[path])


def _method_label(values: pd.Series) -> pd.Series:
    """``Static chamber`` → ``static_chamber``; an empty cell is the default static chamber."""
    method = values.astype(str).str.strip().str.lower().str.replace(r"[\s-]+", "_", regex=True)
    return method.where(method != "", "static_chamber")


def _refuse(t: CsvTable, bad: np.ndarray, column: str, problem: Callable[[int], str], fix: str) -> None:
    bad = np.asarray(bad, dtype=bool)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(t.path, t.line(i), column, problem(i), fix)


def _integer_column(t: CsvTable, column: str, default: int, lo: int, hi: int | None,
                    what: str) -> np.ndarray:
    if column not in t.header:
        return np.full(len(t), default, dtype=int)
    v = parse_numbers(t, column, what=what)
    v = np.where(np.isfinite(v), v, default)
    bad = (v != np.round(v)) | (v < lo) | ((v > hi) if hi is not None else False)
    _refuse(t, bad, column, lambda i: f"{column} {v[i]:g} is not {what}", f"give {what}")
    return v.astype(int)


def _coordinate(t: CsvTable, column: str, limit: float) -> np.ndarray:
    v = parse_numbers(t, column, what="decimal degrees")
    _refuse(t, ~np.isfinite(v), column, lambda i: f"{column} is missing",
            f"give {column} in decimal degrees on every row")
    _refuse(t, np.abs(v) > limit, column, lambda i: f"{column} {v[i]:g} is outside ±{limit:g}",
            "give decimal degrees (south and west negative)")
    return v
