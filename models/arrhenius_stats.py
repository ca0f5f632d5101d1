"""Sufficient statistics of the group likelihood of model M1 (models/arrhenius.py), without pymc.

Per site × class × season group, the Gaussian likelihood of its observations depends on them only
through a few weighted cross-products of (1, x, y) (``group_statistics``) and, under AR(1)
residuals, the lag cross-products of consecutive pairs bucketed by their gap
(``lag_statistics``, ``ar1_statistics``). The sampler, the exact draws and the reports' totals of
the log-likelihood all use these. Functions take ``lib`` (numpy or pytensor.tensor) where the
values may be tensors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def ar1_lag_correlation(rho, gap, lib=np):
    """φ = ρ^Δ and 1 − φ² for a day-to-day autocorrelation ρ ∈ (−1, 1) and integer gaps Δ ≥ 1
    (days on one daily grid: ρ^Δ is the correlation of a daily AR(1) Δ days apart). 1 − φ² is
    formed as −expm1(2Δ log|ρ|), accurate for φ near 0 and near ±1."""
    odd = np.asarray(gap) % 2 == 1  # gaps are data (numpy), ρ may be a tensor
    l_abs = gap * lib.log(lib.abs(rho))
    phi = lib.where(odd, lib.where(rho < 0, -1.0, 1.0), 1.0) * lib.exp(l_abs)
    return phi, -lib.expm1(2.0 * l_abs)


def _pair_name(u: str, v: str) -> str:
    """The statistic name of the cross-product of u and v ("1" the constant): S0 = Σ w, Sx = Σ w x,
    Sxy = Σ w x y, Su = Σ w u, …"""
    return "0" if u == v == "1" else (v if u == "1" else u + v)


# The cross-products of z = √w·(1, x, y): the six distinct entries of a symmetric 3 × 3 matrix.
# With a covariate (centred per class, z̃), z gains u = z̃·x and v = z̃ (``COVARIATE_PAIRS``): the
# covariate's effect β_E·z̃·x + β_R·z̃ on ln|F| is a linear change of y whose statistics follow
# from these (``covariate_adjusted``), at the same O(groups) cost.
_BASE = ("1", "x", "y")
_PAIRS = {_pair_name(u, v): (u, v) for i, u in enumerate(_BASE) for v in _BASE[i:]}
_ALL = ("1", "x", "y", "u", "v")
COVARIATE_PAIRS = {_pair_name(u, v): (u, v) for i, u in enumerate(_ALL) for v in _ALL[i:]
                   if "u" in (u, v) or "v" in (u, v)}


def _variables(obs: pd.DataFrame, scale) -> tuple[dict[str, np.ndarray], dict]:
    """scale·(1, x, y) of every observation, with scale·(z̃x, z̃) where ``obs`` has the centred
    covariate ``z``; and the pairs whose cross-products the statistics hold."""
    x = obs["x"].to_numpy(dtype=float)
    out = {"1": scale, "x": scale * x, "y": scale * obs["y"].to_numpy(dtype=float)}
    if "z" not in obs:
        return out, _PAIRS
    z = obs["z"].to_numpy(dtype=float)
    out.update(u=scale * z * x, v=scale * z)
    return out, {**_PAIRS, **COVARIATE_PAIRS}


def group_statistics(obs: pd.DataFrame) -> pd.DataFrame:
    """Per group (index ``group``): n, S0 = Σ w, Sx = Σ w x, Sy, Sxx, Sxy, Syy = Σ w y², Slogw, and
    with a centred covariate ``z`` the cross-products with u = z x and v = z (Su, Sv, Sxu, …)."""
    w = obs["w"].to_numpy(dtype=float)
    a, pairs = _variables(obs, np.ones(len(obs)))
    # (w·u)·v, so that each product rounds alike however the pair is named
    cols = {"n": 1, **{"S" + name: (w * a[u]) * a[v] for name, (u, v) in pairs.items()},
            "Slogw": np.log(w)}
    return pd.DataFrame(cols).groupby(obs["group"].to_numpy()).sum().rename_axis("group")


def covariate_adjusted(stats: dict, beta_E, beta_R) -> dict:
    """The group statistics of y − β_E·z̃·x − β_R·z̃ (β of each group's class; numpy arrays with
    any leading draw axes, or tensors): with y' = y − β_E u − β_R v,

        Sy' = Sy − β_E Su − β_R Sv,   Sxy' = Sxy − β_E Sxu − β_R Sxv,
        Syy' = Syy − 2β_E Syu − 2β_R Syv + β_E² Suu + 2β_E β_R Suv + β_R² Svv.

    Exact for the AR(1)-adjusted statistics too (``ar1_statistics`` is linear in them)."""
    out = dict(stats)
    out["Sy"] = stats["Sy"] - beta_E * stats["Su"] - beta_R * stats["Sv"]
    out["Sxy"] = stats["Sxy"] - beta_E * stats["Sxu"] - beta_R * stats["Sxv"]
    out["Syy"] = (stats["Syy"] - 2.0 * beta_E * stats["Syu"] - 2.0 * beta_R * stats["Syv"]
                  + beta_E ** 2 * stats["Suu"] + 2.0 * beta_E * beta_R * stats["Suv"]
                  + beta_R ** 2 * stats["Svv"])
    return out


def lag_statistics(obs: pd.DataFrame) -> pd.DataFrame:
    """One row per group × gap Δ among the linked pairs (i−1, i) of consecutive observations:
    ``n`` pairs, Q_uv = Σ (u_i v_i + u_{i−1} v_{i−1}) and C_uv = Σ (u_i v_{i−1} + u_{i−1} v_i) for
    u, v in z = √w·(1, x, y) (and √w·(z̃x, z̃) with a covariate; see ``ar1_statistics``)."""
    i = np.flatnonzero(obs["previous"].to_numpy() >= 0)
    j = obs["previous"].to_numpy()[i]
    z, pairs = _variables(obs, np.sqrt(obs["w"].to_numpy(dtype=float)))
    cols = {"group": obs["group"].to_numpy()[i], "gap": obs["gap_days"].to_numpy()[i], "n": 1}
    for name, (u, v) in pairs.items():
        cols["Q" + name] = z[u][i] * z[v][i] + z[u][j] * z[v][j]
        cols["C" + name] = z[u][i] * z[v][j] + z[u][j] * z[v][i]
    return pd.DataFrame(cols).groupby(["group", "gap"], as_index=False).sum()


def ar1_statistics(stats: dict, lags: dict, rho, segment_sum, lib=np):
    """Group statistics of the AR(1) likelihood, and the log-determinant term of each group.

    Residuals of a group at days t_1 < … < t_n, standardised by the period weights (r̃_i = √w_i r_i),
    follow a stationary continuous-time AR(1): corr(r̃_i, r̃_j) = ρ^|t_i − t_j|. It is Markov, so
    with φ_i = ρ^Δ_i (Δ_i = t_i − t_{i−1}) the density factorises into r̃_1 ~ N(0, σ²) and the
    innovations r̃_i − φ_i r̃_{i−1} ~ N(0, σ²(1 − φ_i²)). With r̃_i = z_i·β, z_i = √w_i (1, x_i, y_i)
    and β = (−a, −b, 1), the exponent is −β'Mβ / 2σ² with

        M = Σ_i z_i z_i' + Σ_pairs [φ²(z_i z_i' + z_{i−1} z_{i−1}') − φ(z_i z_{i−1}' + z_{i−1} z_i')] / (1 − φ²)
          = S + Σ_Δ [φ_Δ² / (1 − φ_Δ²) · Q_Δ − φ_Δ / (1 − φ_Δ²) · C_Δ],

    S the independent-residual statistics (ρ = 0 gives M = S) and Q_Δ, C_Δ the lag cross-products of
    the pairs Δ days apart (``lag_statistics``). M enters the Gaussian integral over the site effects
    exactly as S does (``group_marginal_logp``), and the determinant adds −½ Σ_Δ n_Δ log(1 − φ_Δ²).
    The cost is one term per group × distinct gap, not per observation. Pairs farther apart than
    AR1_HORIZON_DAYS start a new run (ρ^Δ is negligible there).

    ``rho``: ρ of each lag bucket's class (any leading draw axes); ``segment_sum(values)``
    sums the bucket axis (last) into groups. Returns (statistics, log-determinant per group).
    """
    phi, one_minus = ar1_lag_correlation(rho, lags["gap"], lib)
    c_q = phi ** 2 / one_minus
    c_c = phi / one_minus
    out = dict(stats)
    for name in (k[1:] for k in lags if k.startswith("Q")):
        out["S" + name] = stats["S" + name] + segment_sum(c_q * lags["Q" + name] - c_c * lags["C" + name])
    return out, -0.5 * segment_sum(lags["n"] * lib.log(one_minus))


def bucket_summer(bucket_group: np.ndarray, n_groups: int, shape: tuple[int, ...]):
    """``segment_sum`` for ``ar1_statistics`` on numpy draws: broadcasts a bucket array to
    ``shape`` (draw axes, then the lag buckets) and sums its last axis into groups,
    ``bucket_group`` the group of each bucket."""
    from scipy import sparse

    n_b = len(bucket_group)
    onehot = sparse.csr_matrix((np.ones(n_b), (np.arange(n_b), bucket_group)), shape=(n_b, n_groups))

    def segment_sum(values: np.ndarray) -> np.ndarray:
        flat = np.broadcast_to(values, shape).reshape(-1, n_b)
        return np.asarray(onehot.T @ flat.T).T.reshape(tuple(shape[:-1]) + (n_groups,))

    return segment_sum
