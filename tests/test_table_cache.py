"""The parsed-table cache: a hit equals a fresh read, and any change of the inputs reads afresh."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pandas as pd
import pytest

from data import registry, table_cache
from tests.shared_data import require_data

TEMPLATE = Path(__file__).resolve().parents[1] / "examples" / "template_chamber.csv"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(table_cache.ENV_VAR, str(folder))
    return folder


@pytest.fixture
def reads(monkeypatch):
    """Count the reads that reach the readers."""
    calls = []
    real = registry._load_observations

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(registry, "_load_observations", counted)
    return calls


def _csv(tmp_path) -> Path:
    path = tmp_path / "chambers.csv"
    shutil.copy(TEMPLATE, path)
    return path


def _same(a, b) -> None:
    pd.testing.assert_frame_equal(a.table, b.table)
    assert (a.dropped, a.skipped_sites, a.sources, a.synthetic) == \
        (b.dropped, b.skipped_sites, b.sources, b.synthetic)


def test_hit_equals_fresh_read(tmp_path, cache, reads):
    path = _csv(tmp_path)
    first = registry.load_observations(path=path)
    second = registry.load_observations(path=path)
    assert len(reads) == 1
    _same(first, second)
    with pytest.MonkeyPatch.context() as m:
        m.setenv(table_cache.ENV_VAR, "off")
        _same(registry.load_observations(path=path), second)


def test_real_default_data_round_trips(cache, reads):
    require_data(registry.dataset_folder, "fluxnet-ch4")
    require_data(registry.dataset_folder, "hongyuan")
    first = registry.load_observations("ch4-sites")
    second = registry.load_observations("ch4-sites")
    assert len(reads) == 1
    _same(first, second)


def test_changed_content_of_the_same_size_reads_afresh(tmp_path, cache, reads):
    path = _csv(tmp_path)
    before = registry.load_observations(path=path)
    text = path.read_text()
    path.write_text(text.replace("0.85,mg CH4", "0.95,mg CH4", 1))  # same size, same second
    after = registry.load_observations(path=path)
    assert len(reads) == 2
    assert not before.table["flux"].equals(after.table["flux"])


def test_options_are_part_of_the_key(cache, reads):
    require_data(registry.dataset_folder, "hongyuan")
    plots = registry.load_observations("hongyuan", per_chamber=True)
    site = registry.load_observations("hongyuan", per_chamber=False)
    assert len(reads) == 2
    assert plots.table["site"].nunique() > site.table["site"].nunique()


def test_damaged_entry_is_read_afresh_and_replaced(tmp_path, cache, reads):
    path = _csv(tmp_path)
    fresh = registry.load_observations(path=path)
    for f in cache.glob("*.parquet"):
        f.write_bytes(b"not parquet")
    again = registry.load_observations(path=path)
    assert len(reads) == 2
    _same(fresh, again)
    registry.load_observations(path=path)
    assert len(reads) == 2  # the replaced entry serves the third read


def test_errors_are_not_cached(tmp_path, cache):
    path = tmp_path / "bad.csv"
    path.write_text("site,date\nA,2020-01-01\n")
    for _ in range(2):
        with pytest.raises(Exception):
            registry.load_observations(path=path)
    assert not list(cache.glob("*.parquet"))


def test_off_writes_nothing(tmp_path, monkeypatch, reads):
    monkeypatch.setenv(table_cache.ENV_VAR, "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    path = _csv(tmp_path)
    registry.load_observations(path=path)
    registry.load_observations(path=path)
    assert len(reads) == 2
    assert not (tmp_path / "xdg").exists()


def test_reader_warnings_are_given_again_on_a_hit(tmp_path, cache, monkeypatch):
    path = _csv(tmp_path)
    real = registry._load_observations

    def warns(*args, **kwargs):
        warnings.warn("soil temperature taken from TS_2", UserWarning)
        return real(*args, **kwargs)

    monkeypatch.setattr(registry, "_load_observations", warns)
    for _ in range(2):
        with pytest.warns(UserWarning, match="taken from TS_2"):
            registry.load_observations(path=path)


def test_pruning_keeps_the_newest_entries(tmp_path, cache, monkeypatch):
    monkeypatch.setattr(table_cache, "MAX_ENTRIES", 2)
    path = _csv(tmp_path)
    text = path.read_text()
    for k in range(4):
        path.write_text(text + f"# variant {k}\n")
        registry.load_observations(path=path)
    assert len(list(cache.glob("*.parquet"))) == 2
    assert len(list(cache.glob("*.json"))) == 2
