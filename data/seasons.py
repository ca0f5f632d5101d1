"""Season schemes: one season label per row of a canonical observation table.

Schemes (``SCHEMES``):

``julian`` (default)
    ``growing`` = May–Sep, ``non-growing`` = Oct–Apr; for sites south of the equator
    (``latitude < 0``) the months are shifted by six (``growing`` = Nov–Mar). A multi-day period is
    labelled by its middle day.

``freeze-thaw``
    From daily soil temperature per site: ``frozen``, ``spring_thaw`` (transition), ``thawed``,
    ``autumn_freeze`` (transition). Recipe, per site:

    1. Each row's soil temperature is placed at its period's middle day (rows on the same day are
       averaged) and linearly interpolated to a daily series, so weekly or monthly chamber
       sampling works. Gaps longer than ``max_gap_days`` are not bridged: the record is split
       there into independent segments (no crossing is invented inside a long unobserved gap).
    2. A *centred* running mean over ``window_days`` days (default 5, shrinking at segment ends)
       smooths day-to-day noise. Centred, not trailing, because a trailing mean lags the
       temperature by ``(window_days - 1) / 2`` days and would shift every thaw and freeze date
       late; labelling here is retrospective, so the days after a date may be used.
    3. A day is *above* when the running mean is > ``threshold_c`` (default 0 °C). A crossing is
       the first day of a new state: upward = thaw, downward = freeze — wherever it falls in the
       calendar, so the southern hemisphere needs no special case.
    4. The days within ``transition_days`` (default 7) of a crossing form a transition window.
       Crossings whose windows touch or overlap (flicker around the threshold) are merged into one
       event. An event that goes from below to above is ``spring_thaw``; from above to below,
       ``autumn_freeze``; one that returns to the state it started in (a brief mid-winter thaw
       or a brief summer frost shorter than the window) is no transition, and its days keep the
       surrounding state's label.
    5. Every other day is ``thawed`` (above) or ``frozen`` (not above).

    A site whose running mean never reaches or goes below the threshold has no frozen or
    transition days: all its rows are ``thawed`` (and one never above it is all ``frozen``).
    Wet peat under snow often holds its shallow soil just above 0 °C all winter (the "zero
    curtain"; FLUXNET-CH4 FI-Lom's shallowest sensor never goes below 0.03 °C): such a site is
    all ``thawed`` at the default threshold, and a threshold of about 0.5 °C recovers its
    winters.

``none``
    A single label ``all`` (for model comparison: one season).

Labels come back as an ordered categorical whose categories are ``season_labels(scheme)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from data.errors import DataError, file_row

SCHEMES = ("julian", "freeze-thaw", "none")

JULIAN_LABELS = ("growing", "non-growing")
# In the order a year runs through them.
FREEZE_THAW_LABELS = ("frozen", "spring_thaw", "thawed", "autumn_freeze")
NONE_LABELS = ("all",)

_LABELS = {"julian": JULIAN_LABELS, "freeze-thaw": FREEZE_THAW_LABELS, "none": NONE_LABELS}

# Which labels behave like the growing season and which like the non-growing season (for
# projections that need one of the two): only the thawed state is growing-like.
GROWING_LIKE = "growing"
NON_GROWING_LIKE = "non-growing"
_KIND = {
    "julian": {"growing": GROWING_LIKE, "non-growing": NON_GROWING_LIKE},
    "freeze-thaw": {"frozen": NON_GROWING_LIKE, "spring_thaw": NON_GROWING_LIKE,
                    "thawed": GROWING_LIKE, "autumn_freeze": NON_GROWING_LIKE},
    "none": {"all": "all"},
}

GROWING_MONTHS = (5, 6, 7, 8, 9)

DEFAULTS = {
    "julian": {"growing_months": GROWING_MONTHS},
    "freeze-thaw": {"threshold_c": 0.0, "window_days": 5, "transition_days": 7, "max_gap_days": 62},
    "none": {},
}

_SOURCE = "<table>"


def _check_scheme(scheme: str) -> str:
    if scheme not in SCHEMES:
        raise DataError(None, None, "season", f"unknown season scheme '{scheme}'",
                        f"use one of {', '.join(SCHEMES)}")
    return scheme


def season_labels(scheme: str = "julian") -> tuple[str, ...]:
    """The labels a scheme can give, in their categorical order."""
    return _LABELS[_check_scheme(scheme)]


def season_kind(scheme: str = "julian") -> dict[str, str]:
    """Label → ``"growing"`` / ``"non-growing"`` (``"all"`` for the ``none`` scheme)."""
    return dict(_KIND[_check_scheme(scheme)])


def growing_like(scheme: str = "julian") -> tuple[str, ...]:
    """Labels that behave like the growing season (julian: growing; freeze-thaw: thawed)."""
    return tuple(k for k, v in _KIND[_check_scheme(scheme)].items() if v == GROWING_LIKE)


def non_growing_like(scheme: str = "julian") -> tuple[str, ...]:
    """Labels of ``scheme`` that behave like the non-growing season."""
    return tuple(k for k, v in _KIND[_check_scheme(scheme)].items() if v == NON_GROWING_LIKE)


def assign_seasons(table: pd.DataFrame, scheme: str = "julian", **options) -> pd.Series:
    """One season label per row of ``table`` (index aligned), as an ordered categorical.

    Options: julian — ``growing_months`` (northern-hemisphere months, default May–Sep);
    freeze-thaw — ``threshold_c`` (0), ``window_days`` (5), ``transition_days`` (7),
    ``max_gap_days`` (62). See the module docstring for the recipes.
    """
    _check_scheme(scheme)
    unknown = sorted(set(options) - set(DEFAULTS[scheme]))
    if unknown:
        allowed = ", ".join(DEFAULTS[scheme]) or "none"
        raise DataError(None, None, "season", f"unknown option '{unknown[0]}' for season scheme "
                        f"'{scheme}'", f"options of this scheme: {allowed}")
    opts = {**DEFAULTS[scheme], **options}
    if scheme == "julian":
        codes = _julian(table, opts["growing_months"])
    elif scheme == "freeze-thaw":
        codes = _freeze_thaw(table, **_freeze_thaw_options(opts))
    else:
        codes = np.zeros(len(table), dtype=np.int8)
    labels = season_labels(scheme)
    cat = pd.Categorical.from_codes(codes, categories=list(labels), ordered=True)
    return pd.Series(cat, index=table.index, name="season")


# ---------------------------------------------------------------- helpers
def _require(table: pd.DataFrame, columns: Sequence[str], scheme: str) -> None:
    for col in columns:
        if col not in table.columns:
            raise DataError(_SOURCE, 1, col, f"column '{col}' is missing (season scheme '{scheme}')",
                            f"provide {', '.join(columns)}")


def _middle_day(table: pd.DataFrame) -> pd.Series:
    """The middle day of each row's period (its start date when ``days`` is 1 or absent)."""
    date = pd.to_datetime(table["date"]).dt.normalize()
    if "days" not in table.columns:
        return date
    days = pd.to_numeric(table["days"], errors="coerce").fillna(1).astype("int64").clip(lower=1)
    return date + pd.to_timedelta((days - 1) // 2, unit="D")


def _julian(table: pd.DataFrame, growing_months: Sequence[int]) -> np.ndarray:
    _require(table, ("date", "latitude"), "julian")
    months = np.asarray(sorted(set(int(m) for m in growing_months)))
    if months.size == 0 or months.min() < 1 or months.max() > 12:
        raise DataError(None, None, "season", f"growing_months {tuple(growing_months)} are not months",
                        "give month numbers 1–12")
    lat = pd.to_numeric(table["latitude"], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(lat))
    if bad.size:
        raise DataError(_SOURCE, file_row(bad[0]), "latitude", "latitude is missing",
                        "the julian scheme needs each site's latitude to know its hemisphere")
    month = _middle_day(table).dt.month.to_numpy()
    southern_months = (months + 5) % 12 + 1  # six months on: May–Sep → Nov–Mar
    growing = np.where(lat < 0, np.isin(month, southern_months), np.isin(month, months))
    return np.where(growing, 0, 1).astype(np.int8)  # codes into JULIAN_LABELS


def _freeze_thaw_options(opts: dict) -> dict:
    out = {"threshold_c": float(opts["threshold_c"])}
    for name, low in (("window_days", 1), ("transition_days", 0), ("max_gap_days", 1)):
        value = opts[name]
        if int(value) != value or value < low:
            raise DataError(None, None, "season", f"{name} = {value!r} is not a whole number ≥ {low}",
                            f"give {name} in whole days")
        out[name] = int(value)
    return out


def _freeze_thaw(table: pd.DataFrame, threshold_c: float, window_days: int, transition_days: int,
                 max_gap_days: int) -> np.ndarray:
    _require(table, ("site", "date", "soil_temp_c"), "freeze-thaw")
    n = len(table)
    if n == 0:
        return np.zeros(0, dtype=np.int8)
    site_code, site_names = pd.factorize(table["site"].astype(str))
    day = (_middle_day(table) - pd.Timestamp("1970-01-01")).dt.days.to_numpy(dtype=np.int64)
    temp = pd.to_numeric(table["soil_temp_c"], errors="coerce").to_numpy(dtype=float)

    # 1. Measured daily temperature per site (same-day rows averaged), sorted by site then day.
    finite = np.isfinite(temp)
    known = (pd.DataFrame({"site": site_code[finite], "day": day[finite], "temp": temp[finite]})
             .groupby(["site", "day"], sort=True)["temp"].mean())
    k_site = known.index.get_level_values("site").to_numpy()
    k_day = known.index.get_level_values("day").to_numpy()
    no_temp = np.setdiff1d(np.arange(len(site_names)), k_site)
    if no_temp.size:
        row = int(np.flatnonzero(site_code == no_temp[0])[0])
        raise DataError(_SOURCE, file_row(row), "soil_temp_c",
                        f"site {site_names[no_temp[0]]} has no soil temperature",
                        "the freeze-thaw scheme needs soil temperature; use --seasons julian")

    # Segments: a new one at each site and after each gap longer than max_gap_days.
    new_seg = np.ones(len(k_day), dtype=bool)
    new_seg[1:] = (k_site[1:] != k_site[:-1]) | (np.diff(k_day) > max_gap_days)
    seg_of_known = np.cumsum(new_seg) - 1
    seg_first = k_day[new_seg]
    seg_last = k_day[np.r_[np.flatnonzero(new_seg)[1:] - 1, len(k_day) - 1]]
    seg_site = k_site[new_seg]
    seg_len = seg_last - seg_first + 1
    seg_offset = np.cumsum(seg_len) - seg_len  # grid position of each segment's first day
    n_grid = int(seg_len.sum())
    grid_seg = np.repeat(np.arange(len(seg_first)), seg_len)

    # Daily grid, linearly interpolated between measured days. Segments touch in grid positions
    # with no grid day between them, so one global interpolation never mixes two segments.
    k_pos = seg_offset[seg_of_known] + (k_day - seg_first[seg_of_known])
    grid_temp = np.interp(np.arange(n_grid), k_pos, known.to_numpy())

    # 2. Centred running mean within each segment.
    running = (pd.Series(grid_temp).groupby(grid_seg, sort=False)
               .rolling(window_days, center=True, min_periods=1).mean()
               .to_numpy())
    above = running > threshold_c

    # 3. Crossings: first grid day of a new state within a segment.
    changed = np.zeros(n_grid, dtype=bool)
    changed[1:] = (above[1:] != above[:-1]) & (grid_seg[1:] == grid_seg[:-1])
    cross = np.flatnonzero(changed)

    # 0 frozen, 1 spring_thaw, 2 thawed, 3 autumn_freeze (FREEZE_THAW_LABELS).
    grid_label = np.where(above, 2, 0).astype(np.int8)
    if cross.size:
        # 4. Merge crossings whose ±transition_days windows touch; label each merged event.
        new_event = np.ones(cross.size, dtype=bool)
        new_event[1:] = ((grid_seg[cross[1:]] != grid_seg[cross[:-1]])
                         | (np.diff(cross) > 2 * transition_days + 1))
        first = cross[new_event]
        last = cross[np.r_[np.flatnonzero(new_event)[1:] - 1, cross.size - 1]]
        before_above, after_above = above[first - 1], above[last]
        event_label = np.select(
            [~before_above & after_above, before_above & ~after_above, before_above],
            [1, 3, 2], default=0).astype(np.int8)
        seg = grid_seg[first]
        start = np.maximum(first - transition_days, seg_offset[seg])
        stop = np.minimum(last + transition_days, seg_offset[seg] + seg_len[seg] - 1)
        length = stop - start + 1
        pos = np.repeat(start - (np.cumsum(length) - length), length) + np.arange(length.sum())
        grid_label[pos] = np.repeat(event_label, length)

    # Each row → its grid day.
    row_seg = np.searchsorted(seg_first + seg_site * (1 << 40), day + site_code * (1 << 40),
                              side="right") - 1
    inside = row_seg >= 0
    row_seg_safe = np.where(inside, row_seg, 0)
    inside &= (seg_site[row_seg_safe] == site_code) & (day <= seg_last[row_seg_safe])
    if not inside.all():
        row = int(np.flatnonzero(~inside)[0])
        raise DataError(_SOURCE, file_row(row), "soil_temp_c",
                        f"soil temperature is missing and no measurement lies within "
                        f"{max_gap_days} days on both sides",
                        "fill the soil temperature or drop the row before assigning freeze-thaw seasons")
    return grid_label[seg_offset[row_seg] + day - seg_first[row_seg]]
