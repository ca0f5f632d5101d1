"""Checks of options before any data are loaded: one ``DataError`` naming the option."""

from __future__ import annotations

import math
import numbers

from data.errors import DataError

# numpy's seed range (SeedSequence takes any non-negative integer; PyMC passes seeds to C as 32 bits).
SEED_MAX = 2**32 - 1


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise DataError(None, None, _option(name), f"{value!r} is not one of {', '.join(map(str, choices))}",
                        f"pick one of {', '.join(map(str, choices))}")


def check_range(name: str, value, low: float, high: float, *, integer: bool = False) -> None:
    """``low ≤ value ≤ high`` (a whole number when ``integer``), finite."""
    kind = "a whole number" if integer else "a number"
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok and integer:
        ok = float(value).is_integer()
    if ok:
        ok = math.isfinite(value) and low <= value <= high
    if not ok:
        raise DataError(None, None, _option(name), f"{value!r} is not {kind} from {low:g} to {high:g}",
                        f"give {_option(name)} {kind} in that range")


def check_seed(seed) -> None:
    check_range("seed", seed, 0, SEED_MAX, integer=True)
