"""Chamber / literature CSV reader: unit conversions against hand arithmetic, and every refusal."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from data.chamber import KNOWN_FLUX_UNITS, convert_flux, ecosystem_label, read_chamber_csv
from data.errors import DataError
from data.table import validate_observations

HEADER = "site,date,flux,flux_unit,soil_temp_c,ecosystem,latitude,longitude"


def write(tmp_path, text: str, name: str = "chambers.csv", encoding: str = "utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def refused(path, *, row, column) -> DataError:
    with pytest.raises(DataError) as info:
        read_chamber_csv(path)
    err = info.value
    assert err.file == str(path)
    assert err.row == row, str(err)
    assert err.column == column, str(err)
    assert str(err).startswith(f"{path}:{row}:{column}: ")
    return err


# ---------------------------------------------------------------- unit conversions
@pytest.mark.parametrize("value, unit, expected", [
    # identity
    (5.0, "nmol m-2 s-1", 5.0),
    # 0.002 µmol = 2 nmol
    (0.002, "umol m-2 s-1", 2.0),
    (0.002, "µmol m-2 s-1", 2.0),
    (0.002, "μmol m-2 s-1", 2.0),
    # M(CH4) = 12.0107 + 4 × 1.00794 = 16.04246 g mol-1 (IUPAC standard atomic weights)
    # 2 mg CH4 h-1 = 2e-3 g / 16.04246 g mol-1 = 1.246692e-4 mol = 124669.2 nmol per 3600 s = 34.63032
    (2.0, "mg CH4 m-2 h-1", 34.63032),
    (2.0, "mg CH4/m2/h", 34.63032),
    # 1000 µg CH4 h-1 = 1 mg h-1 = 1e-3 / 16.04246 mol = 62334.58 nmol per 3600 s = 17.31516
    (1000.0, "ug CH4 m-2 h-1", 17.31516),
    (1000.0, "µg CH4 m-2 h-1", 17.31516),
    # 12.0107 mg CH4-C d-1 = 1 mmol C = 1 mmol CH4 = 1e6 nmol per 86400 s = 11.57407
    (12.0107, "mg CH4-C m-2 d-1", 11.57407),
    (12.0107, "mg C-CH4 m-2 d-1", 11.57407),
    # 16.04246 g CH4 yr-1 = 1 mol = 1e9 nmol per (365.25 × 86400 = 31 557 600 s) = 31.68809
    (16.04246, "g CH4 m-2 yr-1", 31.68809),
    (16.04246, "g CH4 m^-2 yr^-1", 31.68809),
    # 1 kg ha-1 = 0.1 g m-2: 160.4246 kg CH4 ha-1 yr-1 = 1 mol m-2 yr-1 = 31.68809
    (160.4246, "kg CH4 ha-1 yr-1", 31.68809),
    (160.4246, "kg CH4/ha/yr", 31.68809),
])
def test_convert_flux_matches_hand_arithmetic(value, unit, expected):
    assert convert_flux([value], unit)[0] == pytest.approx(expected, rel=1e-6)


def test_every_listed_unit_converts():
    for unit in KNOWN_FLUX_UNITS:
        assert np.isfinite(convert_flux([1.0], unit)).all()


def test_sign_is_kept_through_conversion():
    # uptake stays negative: −1 µmol = −1000 nmol
    assert convert_flux([-1.0], "umol m-2 s-1")[0] == -1000.0


@pytest.mark.parametrize("unit", ["ppm", "g m-2 d-1", "mg CO2 m-2 h-1", "mg C m-2 d-1", ""])
def test_unknown_unit_lists_known_units(unit):
    with pytest.raises(DataError) as info:
        convert_flux([1.0], unit, file="f.csv", row=7)
    msg = str(info.value)
    assert msg.startswith("f.csv:7:flux_unit:")
    for known in KNOWN_FLUX_UNITS:
        assert known in msg


def test_ecosystem_labels_from_igbp_codes_and_names():
    assert ecosystem_label("WET") == "wetland"
    assert ecosystem_label("GRA") == "grassland"
    assert ecosystem_label("CRO") == "cropland"
    assert ecosystem_label("CRO - Rice") == "rice_paddy"
    assert ecosystem_label("Grassland") == "grassland"
    assert ecosystem_label("Evergreen needleleaf forest") == "evergreen_needleleaf_forest"
    assert ecosystem_label("alpine meadow") == "alpine_meadow"


# ---------------------------------------------------------------- reading
def test_reads_converts_and_defaults(tmp_path):
    path = write(tmp_path, "\n".join([
        HEADER + ",days,notes",
        "Haibei,2015-07-01,0.5,mg CH4 m-2 h-1,12.5,GRA,37.6,101.3,31,monthly mean",
        "Haibei,2015-08-01,-20,ug CH4 m-2 h-1,11.0,GRA,37.6,101.3,31,",
        "Zoige,2015-07-15,0.05,umol m-2 s-1,14,Wetland,33.9,102.9,,",
    ]) + "\n")
    obs = read_chamber_csv(path)
    t = obs.table
    assert list(t["site"]) == ["Haibei", "Haibei", "Zoige"]
    # 0.5 mg CH4 h-1 = 0.5e-3 / 16.04246 mol / 3600 s = 8.657581 nmol s-1
    assert t["flux"].iloc[0] == pytest.approx(8.657581, rel=1e-6)
    # −20 µg CH4 h-1 = −20e-6 / 16.04246 mol / 3600 s = −0.3463032 nmol s-1
    assert t["flux"].iloc[1] == pytest.approx(-0.3463032, rel=1e-6)
    # 0.05 µmol = 50 nmol
    assert t["flux"].iloc[2] == pytest.approx(50.0)
    assert list(t["days"]) == [31, 31, 1]
    assert list(t["ecosystem"]) == ["grassland", "grassland", "wetland"]
    assert set(t["method"]) == {"static_chamber"}
    assert list(t["n_sub"]) == [1, 1, 1]
    assert t["wtd_m"].isna().all() and t["swc"].isna().all()
    assert obs.dropped == {}
    validate_observations(t)  # the returned table is already canonical


def test_empty_flux_or_temperature_rows_are_dropped_and_counted(tmp_path):
    path = write(tmp_path, "\n".join([
        HEADER,
        "A,2020-01-01,,mg CH4 m-2 h-1,5,GRA,30,100",
        "A,2020-01-02,0.1,mg CH4 m-2 h-1,,GRA,30,100",
        "A,2020-01-03,0.1,mg CH4 m-2 h-1,NA,GRA,30,100",
        "A,2020-01-04,0,mg CH4 m-2 h-1,4,GRA,30,100",
    ]) + "\n")
    obs = read_chamber_csv(path)
    assert obs.dropped == {"flux missing": 1, "soil temperature missing": 2}
    # zero flux is kept: models decide what to do with it
    assert list(obs.table["flux"]) == [0.0]


def test_kelvin_declared_soil_temperature_is_converted(tmp_path):
    path = write(tmp_path, "site,date,flux,flux_unit,soil_temp,soil_temp_unit,ecosystem,latitude,longitude\n"
                           "A,2020-01-01,1,nmol m-2 s-1,288.15,K,WET,60,20\n"
                           "A,2020-01-02,1,nmol m-2 s-1,15,degC,WET,60,20\n")
    t = read_chamber_csv(path).table
    assert t["soil_temp_c"].tolist() == pytest.approx([15.0, 15.0])
    assert set(t["soil_temp_source"]) == {"soil_temp"}


def test_optional_columns_and_case_insensitive_header(tmp_path):
    path = write(tmp_path, "Site,Date,Flux,Flux_Unit,Soil_Temp_C,Ecosystem,Latitude,Longitude,Method,"
                           "n_sub,wtd_m,swc,ustar,le,nee,gpp\n"
                           "A,2020-01-01,1,nmol m-2 s-1,5,WET,60,20,autochamber,12,-0.1,0.4,0.2,50,-1,2\n")
    t = read_chamber_csv(path).table
    row = t.iloc[0]
    assert row["method"] == "autochamber" and row["n_sub"] == 12
    assert (row["wtd_m"], row["swc"], row["ustar"], row["le"], row["nee"], row["gpp"]) == \
        (-0.1, 0.4, 0.2, 50.0, -1.0, 2.0)


def test_byte_order_mark_comments_and_gzip_are_accepted(tmp_path):
    text = "# exported from a spreadsheet\n" + HEADER + "\n\nA,2020-01-01,1,nmol m-2 s-1,5,WET,60,20\n"
    plain = write(tmp_path, "\ufeff" + text)
    assert len(read_chamber_csv(plain).table) == 1
    gz = tmp_path / "chambers.csv.gz"
    gz.write_bytes(gzip.compress(("\ufeff" + text).encode()))
    assert len(read_chamber_csv(gz).table) == 1


# ---------------------------------------------------------------- refusals name file, row, column
GOOD_ROW = "A,2020-01-01,1,nmol m-2 s-1,5,WET,60,20"


@pytest.mark.parametrize("bad_row, column, part, fragment", [
    ("A,2020-01-02,1,nmol m-2 s-1,281.3,WET,60,20", "soil_temp_c", "problem", "Kelvin"),
    ("A,01/02/2020,1,nmol m-2 s-1,5,WET,60,20", "date", "fix", "YYYY-MM-DD"),
    ("A,2020-01-02,1,mg m-2 h-1,5,WET,60,20", "flux_unit", "fix", "mg CH4 m-2 h-1"),
    ("A,2020-01-02,1;5,nmol m-2 s-1,5,WET,60,20", "flux", "problem", "'1;5'"),
    # 2 µmol m-2 s-1 = 2000 nmol m-2 s-1: a CO2-sized number in the CH4 column
    ("A,2020-01-02,2,umol m-2 s-1,5,WET,60,20", "flux", "problem", "umol m-2 s-1"),
    ("A,2020-01-02,1,nmol m-2 s-1,5,WET,60,20,extra", "-", "problem", "fields"),
])
def test_a_bad_row_after_a_good_one_is_named(tmp_path, bad_row, column, part, fragment):
    err = refused(write(tmp_path, f"{HEADER}\n{GOOD_ROW}\n{bad_row}\n"), row=3, column=column)
    assert fragment in getattr(err, part)


def test_kelvin_looking_after_comment_lines_names_the_file_line(tmp_path):
    path = write(tmp_path, "# note\n" + HEADER + "\n# another\nA,2020-01-01,1,nmol m-2 s-1,290,WET,60,20\n")
    refused(path, row=4, column="soil_temp_c")


def test_missing_required_columns_are_listed(tmp_path):
    path = write(tmp_path, "site,date,flux,soil_temp_c,ecosystem,latitude,longitude\n"
                           "A,2020-01-01,1,5,WET,60,20\n")
    err = refused(path, row=1, column="flux_unit")
    for column in ("site", "date", "flux", "flux_unit", "soil_temp_c", "ecosystem", "latitude"):
        assert column in err.fix


def test_missing_soil_temperature_column(tmp_path):
    path = write(tmp_path, "site,date,flux,flux_unit,ecosystem,latitude,longitude\n"
                           "A,2020-01-01,1,nmol m-2 s-1,WET,60,20\n")
    refused(path, row=1, column="soil_temp_c")


def test_duplicate_site_dates(tmp_path):
    path = write(tmp_path, HEADER + "\nA,2020-01-01,1,nmol m-2 s-1,5,WET,60,20\n"
                                     "B,2020-01-01,1,nmol m-2 s-1,5,WET,60,20\n"
                                     "A,2020-01-01,2,nmol m-2 s-1,5,WET,60,20\n")
    err = refused(path, row=4, column="date")
    assert "line 2" in err.problem


def test_flux_without_unit(tmp_path):
    path = write(tmp_path, HEADER + "\nA,2020-01-01,1,,5,WET,60,20\n")
    refused(path, row=2, column="flux_unit")


def test_empty_file(tmp_path):
    refused(write(tmp_path, ""), row="-", column="-")
    refused(write(tmp_path, "\n\n  \n", "blank.csv"), row="-", column="-")


def test_header_without_rows(tmp_path):
    refused(write(tmp_path, HEADER + "\n"), row=1, column="-")


def test_decimal_comma_flux_is_refused(tmp_path):
    path = write(tmp_path, HEADER + '\nA,2020-01-01,"1,5",nmol m-2 s-1,5,WET,60,20\n')
    refused(path, row=2, column="flux")


def test_truncated_gzip(tmp_path):
    body = gzip.compress((HEADER + "\n" + "A,2020-01-01,1,nmol m-2 s-1,5,WET,60,20\n" * 50).encode())
    path = tmp_path / "chambers.csv.gz"
    path.write_bytes(body[: len(body) // 2])
    err = refused(path, row="-", column="-")
    assert "truncated" in err.problem


def test_gz_name_without_gzip_content(tmp_path):
    refused(write(tmp_path, HEADER + "\n", "plain.csv.gz"), row="-", column="-")


def test_wrong_delimiter(tmp_path):
    path = write(tmp_path, HEADER.replace(",", ";") + "\nA;2020-01-01;1;nmol m-2 s-1;5;WET;60;20\n")
    err = refused(path, row=1, column="-")
    assert "';'-separated" in err.problem


def test_tab_delimited(tmp_path):
    path = write(tmp_path, HEADER.replace(",", "\t") + "\nA\t2020-01-01\t1\tnmol m-2 s-1\t5\tWET\t60\t20\n")
    with pytest.raises(DataError, match="tab-separated"):
        read_chamber_csv(path)


def test_trailing_empty_header_cells_are_ignored(tmp_path):
    path = write(tmp_path, HEADER + ",,\nA,2020-01-01,1,nmol m-2 s-1,5,WET,60,20,,\n")
    assert len(read_chamber_csv(path).table) == 1


def test_unknown_method(tmp_path):
    path = write(tmp_path, HEADER + ",method\nA,2020-01-01,1,nmol m-2 s-1,5,WET,60,20,bag\n")
    refused(path, row=2, column="method")


def test_unknown_soil_temperature_unit(tmp_path):
    path = write(tmp_path, "site,date,flux,flux_unit,soil_temp,soil_temp_unit,ecosystem,latitude,longitude\n"
                           "A,2020-01-01,1,nmol m-2 s-1,59,F,WET,60,20\n")
    refused(path, row=2, column="soil_temp_unit")


def test_soil_water_in_percent(tmp_path):
    path = write(tmp_path, HEADER + ",swc\nA,2020-01-01,1,nmol m-2 s-1,5,WET,60,20,35\n")
    refused(path, row=2, column="swc")


def test_latitude_out_of_range_and_missing(tmp_path):
    refused(write(tmp_path, HEADER + "\nA,2020-01-01,1,nmol m-2 s-1,5,WET,95,20\n"), row=2, column="latitude")
    refused(write(tmp_path, HEADER + "\nA,2020-01-01,1,nmol m-2 s-1,5,WET,,20\n", "b.csv"),
            row=2, column="latitude")


def test_days_must_be_whole_and_positive(tmp_path):
    refused(write(tmp_path, HEADER + ",days\nA,2020-01-01,1,nmol m-2 s-1,5,WET,60,20,0\n"),
            row=2, column="days")
    refused(write(tmp_path, HEADER + ",days\nA,2020-01-01,1,nmol m-2 s-1,5,WET,60,20,1.5\n", "b.csv"),
            row=2, column="days")


def test_not_utf8_and_not_csv(tmp_path):
    refused(write(tmp_path, HEADER + "\nA,2020-01-01,1,nmol m-2 s-1,5,Wetland é,60,20\n", encoding="latin-1"),
            row=2, column="-")
    xlsx = tmp_path / "sheet.csv"
    xlsx.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    refused(xlsx, row="-", column="-")


def test_missing_file(tmp_path):
    refused(tmp_path / "nope.csv", row="-", column="-")


# ---------------------------------------------------------------- missing-value codes, names, dates
@pytest.mark.parametrize("column, value", [
    ("flux", "-999"), ("flux", "-9999"), ("flux", "-9999.0"), ("flux", "-9.999e3"), ("flux", "-99999"),
    ("soil_temp_c", "-999.9"), ("latitude", "-9999"), ("wtd_m", "-999"), ("swc", "-9999"),
])
def test_missing_value_codes_are_refused_never_data(tmp_path, column, value):
    """A −999 nmol m-2 s-1 flux lies inside the plausible range: read as a number, it would be
    uptake. Every spelling of every code is refused where it stands."""
    header = HEADER + ",wtd_m,swc"
    good = GOOD_ROW + ",0.1,0.3"
    cells = dict(zip(header.split(","), good.split(",")))
    cells["date"] = "2020-01-02"
    cells[column] = value
    err = refused(write(tmp_path, f"{header}\n{good}\n{','.join(cells.values())}\n"), row=3,
                  column=column)
    assert "missing-value code" in err.problem and "empty" in err.fix


@pytest.mark.parametrize("token", ["NA", "na", "NaN", "n/a", "N/A", "#N/A", "NULL", "none", "-", "--",
                                   "<NA>", ""])
def test_na_spellings_are_missing_and_counted(tmp_path, token):
    text = f"{HEADER}\n{GOOD_ROW}\nA,2020-01-02,{token},nmol m-2 s-1,5,WET,60,20\n"
    obs = read_chamber_csv(write(tmp_path, text))
    assert len(obs.table) == 1 and obs.dropped == {"flux missing": 1}


def test_site_names_starting_with_hash_are_data(tmp_path):
    text = ("# exported from the field book\n" + HEADER + "\n"
            "#1,2020-01-01,1,nmol m-2 s-1,5,WET,60,20\n"
            "# a note below the header\n"
            "#1,2020-01-02,2,nmol m-2 s-1,6,WET,60,20\n"
            '"#2, east",2020-01-01,3,nmol m-2 s-1,5,WET,60,20\n'
            "HY|3,2020-01-01,4,nmol m-2 s-1,5,WET,60,20\n")
    obs = read_chamber_csv(write(tmp_path, text))
    assert obs.table["site"].value_counts().to_dict() == {"#1": 2, "#2, east": 1, "HY|3": 1}
    assert not obs.dropped
    # a '#' line as wide as the header is a row: a bad one is refused at its line, not skipped
    text = HEADER + "\n" + GOOD_ROW + "\n#,2020-13-01,1,nmol m-2 s-1,5,WET,60,20\n"
    refused(write(tmp_path, text), row=3, column="date")


@pytest.mark.parametrize("date, column, days", [
    ("1600-01-01", "date", None), ("1677-09-21", "date", None), ("2262-04-12", "date", None),
    ("9999-12-31", "date", None), ("2262-04-01", "days", 30),
])
def test_dates_outside_the_table_range_are_refused(tmp_path, date, column, days):
    header = HEADER + (",days" if days else "")
    row = f"A,{date},1,nmol m-2 s-1,5,WET,60,20" + (f",{days}" if days else "")
    good = GOOD_ROW + (",1" if days else "")
    err = refused(write(tmp_path, f"{header}\n{good}\n{row}\n"), row=3, column=column)
    assert "2262-04-11" in err.problem


def test_dates_at_the_edges_of_the_range_are_read(tmp_path):
    text = (f"{HEADER}\nA,1677-09-22,1,nmol m-2 s-1,5,WET,60,20\n"
            "A,2262-04-11,1,nmol m-2 s-1,5,WET,60,20\n")
    assert len(read_chamber_csv(write(tmp_path, text)).table) == 2


def test_a_table_with_out_of_range_dates_is_refused_by_the_validator():
    import pandas as pd

    table = pd.DataFrame({"site": ["A"], "date": [np.datetime64("1500-01-01", "s")], "days": [1],
                          "flux": [1.0], "soil_temp_c": [5.0], "ecosystem": ["wetland"],
                          "method": ["static_chamber"], "latitude": [30.0], "longitude": [90.0],
                          "n_sub": [1]})
    with pytest.raises(DataError) as info:
        validate_observations(table, "t.csv")
    assert (info.value.row, info.value.column) == (2, "date")


# ---------------------------------------------------------------- large files: read in pieces
def _long_file(n_rows=300):
    """File lines of a chamber CSV: header, rows of two sites, comment and blank lines between
    them, a site named '#3' and quoted cells."""
    lines = ["# exported by a logger", HEADER]
    for k in range(n_rows):
        site = ("#3", '"A, plot 1"', "B")[k % 3]
        lines.append(f"{site},2020-{1 + k // 28 % 12:02d}-{1 + k % 28:02d},{(k % 17) - 4.5},"
                     f"ug CH4 m-2 h-1,{k % 23 - 3},WET,60.{k % 7},20.5")
        if k % 41 == 0:
            lines += ["", "# instrument restarted"]
    return lines


def test_a_file_read_in_pieces_is_the_file_read_whole(tmp_path, monkeypatch):
    import pandas as pd

    import data.chamber as chamber
    from data.chamber import consume_csv

    path = write(tmp_path, "\n".join(_long_file()) + "\n")
    whole = read_chamber_csv(path)
    monkeypatch.setattr(chamber, "CHUNK_BYTES", 97)
    assert consume_csv(path, lambda pieces: len(list(pieces))) > 50  # it is read in pieces
    pieces = read_chamber_csv(path)
    pd.testing.assert_frame_equal(pieces.table, whole.table, check_exact=True)
    assert pieces.dropped == whole.dropped
    # every data row is read (the '#3' rows are data, the '#' lines between them comments)
    assert whole.table["site"].value_counts().to_dict() == {"#3": 100, "A, plot 1": 100, "B": 100}


@pytest.mark.parametrize("cell, column, words", [
    ("-9999", "flux", "missing-value code"), ("abc", "soil_temp_c", "not a number"),
    ("2020-13-01", "date", "cannot be read"), ("1,extra", "-", "more fields"),
])
def test_an_error_in_a_late_piece_names_its_file_line(tmp_path, monkeypatch, cell, column, words):
    import data.chamber as chamber

    lines = _long_file()
    at = len(lines) - 3  # a late data row, after comment and blank lines
    cells = lines[at].split(",")
    index = {"flux": 2, "soil_temp_c": 4, "date": 1, "-": 7}[column]
    cells[index] = cell
    lines[at] = ",".join(cells)
    monkeypatch.setattr(chamber, "CHUNK_BYTES", 97)
    err = refused(write(tmp_path, "\n".join(lines) + "\n"), row=at + 1, column=column)
    assert words in err.problem
