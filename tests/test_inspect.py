"""`python -m data.inspect` on the real default dataset and on bad input."""

from __future__ import annotations

import json

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
