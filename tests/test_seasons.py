"""Season schemes: julian months by hemisphere, freeze-thaw on series with known crossing dates."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data.errors import DataError
from data.seasons import (SCHEMES, assign_seasons, growing_like, non_growing_like, season_kind,
                          season_labels)
from tests.shared_data import require_data, require_files

NZ_KOP_LAT = -37.39
WINDOW = 5
HALF = 7  # transition_days used by the freeze-thaw tests


def monthly_table(latitude: float, site: str = "S") -> pd.DataFrame:
    dates = pd.date_range("2015-01-15", periods=12, freq="MS") + pd.Timedelta(days=14)
    return pd.DataFrame({"site": site, "date": dates, "days": 1, "latitude": latitude,
                         "soil_temp_c": 5.0})


def growing_months(labels: pd.Series, table: pd.DataFrame) -> set[int]:
    return set(table.loc[labels == "growing", "date"].dt.month)


# ---------------------------------------------------------------- julian
def test_julian_northern_site_grows_may_to_september():
    table = monthly_table(32.8)
    labels = assign_seasons(table)
    assert growing_months(labels, table) == {5, 6, 7, 8, 9}
    assert set(table.loc[labels == "non-growing", "date"].dt.month) == {10, 11, 12, 1, 2, 3, 4}


def test_julian_southern_site_is_shifted_six_months():
    table = monthly_table(NZ_KOP_LAT, site="NZ-Kop")
    labels = assign_seasons(table, "julian")
    assert growing_months(labels, table) == {11, 12, 1, 2, 3}
    assert labels[table["date"].dt.month == 1].eq("growing").all()
    assert labels[table["date"].dt.month == 7].eq("non-growing").all()


def test_julian_multi_day_period_uses_middle_day():
    # 14-day periods: middle day = start + 6 days.
    table = pd.DataFrame({"site": "S", "latitude": 45.0, "days": 14, "date": pd.to_datetime(
        ["2015-04-25", "2015-04-24", "2015-09-24", "2015-09-25"])})
    labels = assign_seasons(table).astype(str).tolist()
    assert labels == ["growing", "non-growing", "growing", "non-growing"]


def test_julian_label_shape_and_alignment():
    table = pd.concat([monthly_table(30.0, "A"), monthly_table(-30.0, "B")])
    table.index = np.arange(100, 124)[::-1]
    labels = assign_seasons(table)
    assert labels.index.equals(table.index)
    assert isinstance(labels.dtype, pd.CategoricalDtype) and labels.cat.ordered
    assert tuple(labels.cat.categories) == season_labels("julian")
    # the southern growing months are the northern ones six months on
    north = growing_months(labels.iloc[:12], table.iloc[:12])
    south = growing_months(labels.iloc[12:], table.iloc[12:])
    assert south == {(m + 5) % 12 + 1 for m in north}


def test_julian_missing_latitude_is_a_data_error():
    table = monthly_table(30.0)
    table.loc[3, "latitude"] = np.nan
    with pytest.raises(DataError, match=r":5:latitude:"):
        assign_seasons(table)


def test_unknown_scheme_lists_the_schemes():
    with pytest.raises(DataError) as err:
        assign_seasons(monthly_table(30.0), "monsoon")
    assert all(s in str(err.value) for s in SCHEMES)


def test_unknown_option_is_refused():
    with pytest.raises(DataError, match="window_days"):
        assign_seasons(monthly_table(30.0), "freeze-thaw", windw_days=3)
    with pytest.raises(DataError, match="whole number"):
        assign_seasons(monthly_table(30.0), "freeze-thaw", window_days=2.5)


def test_none_scheme_is_one_label():
    labels = assign_seasons(monthly_table(30.0), "none")
    assert labels.eq("all").all() and tuple(labels.cat.categories) == ("all",)


def test_growing_like_helpers_partition_the_labels():
    for scheme in ("julian", "freeze-thaw"):
        g, ng = growing_like(scheme), non_growing_like(scheme)
        assert set(g) | set(ng) == set(season_labels(scheme)) and not set(g) & set(ng)
        assert set(season_kind(scheme)) == set(season_labels(scheme))
    assert growing_like("freeze-thaw") == ("thawed",)
    assert growing_like("julian") == ("growing",)


# ---------------------------------------------------------------- freeze-thaw
PERIOD = 365.25


def sinusoid(t: np.ndarray, mean: float, amp: float, t_up: float) -> np.ndarray:
    """mean + amp·sin(2π(t − t_up)/P): rises through ``mean`` at t_up."""
    return mean + amp * np.sin(2 * np.pi * (t - t_up) / PERIOD)


def analytic_crossings(mean: float, amp: float, t_up: float, t_max: float):
    """Days (first day of the new state) when the centred running mean crosses 0 °C.

    The centred mean of a sampled sinusoid is the same sinusoid with amplitude times
    g = sin(Wδ/2) / (W·sin(δ/2)), δ = 2π/P, and no phase shift.
    """
    delta = 2 * np.pi / PERIOD
    g = np.sin(WINDOW * delta / 2) / (WINDOW * np.sin(delta / 2))
    phase = np.arcsin(mean / (amp * g)) * PERIOD / (2 * np.pi)
    ups = t_up - phase + PERIOD * np.arange(-2, 6)
    downs = t_up + PERIOD / 2 + phase + PERIOD * np.arange(-2, 6)
    keep = lambda c: np.ceil(c[(c > 10) & (c < t_max - 10)]).astype(int)  # noqa: E731
    return keep(ups), keep(downs)


def expected_labels(days: np.ndarray, ups, downs, temp_mean_above: np.ndarray) -> np.ndarray:
    out = np.where(temp_mean_above, "thawed", "frozen").astype(object)
    for c in ups:
        out[np.abs(days - c) <= HALF] = "spring_thaw"
    for c in downs:
        out[np.abs(days - c) <= HALF] = "autumn_freeze"
    return out


@pytest.mark.parametrize("latitude,t_up", [(33.0, 95.3), (-45.0, 277.6)])
def test_freeze_thaw_matches_analytic_crossings(latitude, t_up):
    # Southern site: upward crossing in October; it is still the spring thaw.
    mean, amp = 2.0, 8.0
    days = np.arange(3 * 365)
    temp = sinusoid(days, mean, amp, t_up)
    table = pd.DataFrame({"site": "S", "date": pd.Timestamp("2014-01-01") + pd.to_timedelta(days, "D"),
                          "days": 1, "soil_temp_c": temp, "latitude": latitude})
    labels = assign_seasons(table, "freeze-thaw", transition_days=HALF).astype(str).to_numpy()
    ups, downs = analytic_crossings(mean, amp, t_up, days.max())
    assert len(ups) == 3 and len(downs) == 3
    interior = (days > 10) & (days < days.max() - 10)
    expected = expected_labels(days, ups, downs, temp > 0)
    assert (labels[interior] == expected[interior]).all()
    thaw_months = set(table.loc[labels == "spring_thaw", "date"].dt.month)
    assert thaw_months <= ({3, 4, 5} if latitude > 0 else {9, 10, 11})


def test_freeze_thaw_tolerates_weekly_sampling():
    mean, amp, t_up = 1.5, 9.0, 100.4
    days = np.arange(3, 3 * 365, 7)  # a static chamber visited weekly
    table = pd.DataFrame({"site": "SC", "date": pd.Timestamp("2016-01-01") + pd.to_timedelta(days, "D"),
                          "days": 1, "soil_temp_c": sinusoid(days, mean, amp, t_up),
                          "latitude": 33.0})
    labels = assign_seasons(table, "freeze-thaw", transition_days=HALF).astype(str).to_numpy()
    ups, downs = analytic_crossings(mean, amp, t_up, days.max())
    expected = expected_labels(days, ups, downs, table["soil_temp_c"].to_numpy() > 0)
    # Linear interpolation between weekly visits may move a crossing by a day: compare rows
    # more than a day away from any window edge.
    edges = np.concatenate([np.r_[ups, downs] - HALF, np.r_[ups, downs] + HALF])
    clear = np.abs(days[:, None] - edges[None, :]).min(axis=1) > 1
    clear &= (days > 10) & (days < days.max() - 10)
    assert (labels[clear] == expected[clear]).all()
    for c in ups:  # each 15-day window holds two weekly visits
        assert (labels[np.abs(days - c) <= HALF] == "spring_thaw").sum() >= 2


def test_never_freezing_site_is_all_thawed_beside_a_freezing_site():
    days = np.arange(800)
    dates = pd.Timestamp("2013-01-01") + pd.to_timedelta(days, "D")
    warm = pd.DataFrame({"site": "NZ-Kop", "date": dates, "soil_temp_c": sinusoid(days, 13.0, 5.0, 280),
                         "latitude": NZ_KOP_LAT})
    cold = pd.DataFrame({"site": "FROZEN", "date": dates, "soil_temp_c": sinusoid(days, -8.0, 3.0, 100),
                         "latitude": 70.0})
    mixed = pd.DataFrame({"site": "MIXED", "date": dates, "soil_temp_c": sinusoid(days, 1.0, 8.0, 100),
                          "latitude": 33.0})
    table = pd.concat([warm, cold, mixed]).sample(frac=1.0, random_state=1)  # interleaved rows
    labels = assign_seasons(table, "freeze-thaw")
    assert labels[table["site"] == "NZ-Kop"].eq("thawed").all()
    assert labels[table["site"] == "FROZEN"].eq("frozen").all()
    assert set(labels[table["site"] == "MIXED"]) == set(season_labels("freeze-thaw"))


def test_brief_midwinter_thaw_is_not_a_transition():
    days = np.arange(365)
    temp = sinusoid(days, 1.0, 9.0, 110.0)
    temp[15:19] = 3.0  # four warm days in January lift the running mean above 0 briefly
    table = pd.DataFrame({"site": "S", "date": pd.Timestamp("2015-01-01") + pd.to_timedelta(days, "D"),
                          "soil_temp_c": temp, "latitude": 33.0})
    labels = assign_seasons(table, "freeze-thaw", transition_days=HALF)
    january = table["date"].dt.month == 1
    assert labels[january].eq("frozen").all()
    # a longer threshold-crossing warm spell (weeks apart) is a genuine thaw–freeze pair
    temp[15:45] = 3.0
    labels = assign_seasons(table.assign(soil_temp_c=temp), "freeze-thaw", transition_days=HALF)
    assert {"spring_thaw", "thawed", "autumn_freeze"} <= set(labels[(days >= 5) & (days <= 55)])


def test_long_gaps_are_not_bridged():
    # Last autumn visit at -1 °C, next visit 70 days later at +1 °C.
    table = pd.DataFrame({"site": "S", "date": pd.to_datetime(["2015-11-20", "2016-01-29"]),
                          "soil_temp_c": [-1.0, 1.0], "latitude": 33.0})
    wide = dict(transition_days=40)
    assert assign_seasons(table, "freeze-thaw", **wide).astype(str).tolist() == ["frozen", "thawed"]
    bridged = assign_seasons(table, "freeze-thaw", max_gap_days=80, **wide).astype(str).tolist()
    assert bridged == ["spring_thaw", "spring_thaw"]


def test_freeze_thaw_needs_soil_temperature():
    table = monthly_table(30.0).assign(soil_temp_c=np.nan)
    with pytest.raises(DataError, match="soil_temp_c"):
        assign_seasons(table, "freeze-thaw")


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n_sites=st.integers(1, 4), step=st.integers(1, 40))
def test_freeze_thaw_labels_do_not_depend_on_row_order(seed, n_sites, step):
    rng = np.random.default_rng(seed)
    parts = []
    for i in range(n_sites):
        days = np.arange(0, 900, step) + rng.integers(0, step)
        temp = sinusoid(days, rng.uniform(-3, 6), rng.uniform(1, 10), rng.uniform(0, 365))
        temp += rng.normal(0, 1.5, days.size)
        parts.append(pd.DataFrame({"site": f"S{i}", "soil_temp_c": temp, "latitude": 30.0,
                                   "date": pd.Timestamp("2014-03-01") + pd.to_timedelta(days, "D")}))
    table = pd.concat(parts, ignore_index=True)
    labels = assign_seasons(table, "freeze-thaw")
    shuffled = table.sample(frac=1.0, random_state=seed % 1000)
    again = assign_seasons(shuffled, "freeze-thaw")
    assert again.index.equals(shuffled.index)
    pd.testing.assert_series_equal(again.sort_index(), labels)
    assert set(labels.astype(str)) <= set(season_labels("freeze-thaw"))


def test_twenty_thousand_rows_in_well_under_a_second():
    rng = np.random.default_rng(0)
    days = np.arange(1000)
    table = pd.concat([pd.DataFrame({
        "site": f"S{i:02d}", "date": pd.Timestamp("2012-01-01") + pd.to_timedelta(days, "D"),
        "days": 1, "latitude": 30.0 if i % 2 else -30.0,
        "soil_temp_c": sinusoid(days, 2.0, 9.0, 100.0 + 10 * i) + rng.normal(0, 1.5, days.size)})
        for i in range(20)], ignore_index=True)
    for scheme in SCHEMES:
        start = time.perf_counter()
        labels = assign_seasons(table, scheme)
        assert time.perf_counter() - start < 1.0
        assert len(labels) == 20_000


# ---------------------------------------------------------------- real data
def _read_site(name: str) -> pd.DataFrame:
    fluxnet = pytest.importorskip("data.fluxnet")
    from data.registry import dataset_folder

    folder = require_data(dataset_folder, "fluxnet-ch4")
    files = require_files(folder, f"FLX_{name}_*")
    return fluxnet.read_fluxnet_ch4(files[0]).table


def runs(labels: pd.Series, table: pd.DataFrame) -> pd.DataFrame:
    """Consecutive runs of one label: label, first date, last date."""
    run = (labels != labels.shift()).cumsum()
    return (pd.DataFrame({"label": labels.astype(str), "date": table["date"], "run": run})
            .groupby("run").agg(label=("label", "first"), first=("date", "min"), last=("date", "max")))


def test_real_fluxnet_sites():
    kop, lom, che = _read_site("NZ-Kop"), _read_site("FI-Lom"), _read_site("RU-Che")
    kop_labels, lom_labels = assign_seasons(kop), assign_seasons(lom)
    assert kop_labels[kop["date"].dt.month == 1].eq("growing").all()
    assert kop_labels[kop["date"].dt.month == 7].eq("non-growing").all()
    assert lom_labels[lom["date"].dt.month == 1].eq("non-growing").all()
    assert lom_labels[lom["date"].dt.month == 7].eq("growing").all()

    # Kopuatai (a lowland New Zealand bog, soil ≥ 5 °C) never freezes.
    assert assign_seasons(kop, "freeze-thaw").eq("thawed").all()
    # Cherskii (NE Siberia): one thaw each spring (May–June), one freeze each autumn (Sep–Nov).
    che_runs = runs(assign_seasons(che, "freeze-thaw"), che)
    thaws = che_runs[che_runs["label"] == "spring_thaw"]
    freezes = che_runs[che_runs["label"] == "autumn_freeze"]
    years = che["date"].dt.year.nunique()
    assert len(thaws) == years and len(freezes) == years
    assert set(thaws["first"].dt.month) <= {5, 6}
    assert set(freezes["first"].dt.month) <= {9, 10, 11}
    # Lompolojänkkä (Lapland fen): shallow peat stays just above 0 °C under snow, so it is all
    # thawed at 0 °C and shows its winters at 0.5 °C, thawing in April–May.
    assert assign_seasons(lom, "freeze-thaw").eq("thawed").all()
    lom_runs = runs(assign_seasons(lom, "freeze-thaw", threshold_c=0.5), lom)
    lom_thaws = lom_runs[lom_runs["label"] == "spring_thaw"]
    assert len(lom_thaws) == lom["date"].dt.year.nunique()
    assert set(lom_thaws["first"].dt.month) <= {4, 5}
