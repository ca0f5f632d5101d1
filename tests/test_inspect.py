"""`python -m data.inspect` on the real default dataset and on bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from data import inspect


def test_default_dataset_json(capsys):
    assert inspect.main(["--dataset", "ch4-sites", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert {"dataset", "n_rows", "sites", "dropped"} <= set(info)
    wetlands = [s for s in info["sites"] if s["ecosystem"] == "wetland"]
    assert len(wetlands) == 17
    assert "BW-Gum" in info["skipped_sites"]
    wetland_days = sum(s["n_rows"] for s in wetlands)
    assert 13_000 <= wetland_days <= 15_000
    hongyuan = [s for s in info["sites"] if s["site"].startswith("Hongyuan")]
    assert hongyuan and all(s["ecosystem"] == "grassland" for s in hongyuan)
    for s in hongyuan:  # about a year of daily means (Jul 2015 – Jul 2016)
        assert 330 <= s["n_rows"] <= 370 and s["first"].startswith("2015-07")
    for s in info["sites"]:
        assert set(s) >= {"site", "ecosystem", "method", "n_rows", "first", "last"}


def test_text_output_names_seasons_and_classes(capsys):
    assert inspect.main(["--dataset", "synthetic", "--seasons", "freeze-thaw"]) == 0
    out = capsys.readouterr().out
    assert "[SYNTHETIC DATA]" in out and "spring_thaw" in out and "grassland_uptake" in out


def test_bad_file_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "chambers.csv"
    bad.write_text("")
    assert inspect.main(["--data", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and str(bad) in err[0]


flux_values = st.sampled_from([-2.5, -0.1, 0.0, 0.3, 7.0, np.nan])
ecosystems = st.sampled_from(["wetland", "grassland", "rice_paddy", "a b", None])


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(flux_values, ecosystems), max_size=40),
       text_dtype=st.sampled_from([object, "str", "category"]))
def test_class_labels_counted_on_codes_match_labels_per_row(rows, text_dtype):
    """Flux classes labelled once per ecosystem × sign, and their count per class × season, are
    what labelling every row and ``pd.crosstab`` give."""
    from data.seasons import assign_seasons
    from data.table import _flux_class_rows, flux_class

    table = pd.DataFrame({"flux": [f for f, _ in rows], "ecosystem": [e for _, e in rows]})
    table["ecosystem"] = table["ecosystem"].astype(text_dtype)
    table.index = np.arange(len(table))[::-1] * 3  # labels follow the index, not positions
    classes = flux_class(table)
    pd.testing.assert_series_equal(classes, _flux_class_rows(table))
    if not len(table):
        return
    table["date"] = pd.date_range("2020-01-01", periods=len(table), freq="17D")
    table["latitude"] = 30.0
    seasons = assign_seasons(table, "julian")
    named = classes.fillna("zero_flux")
    expected = pd.crosstab(named, seasons)
    got = inspect._class_season_counts(named, seasons)
    assert {c: dict(r) for c, r in got.iterrows()} == {c: dict(r) for c, r in expected.iterrows()}
