"""Physical constants, unit factors and the Boltzmann–Arrhenius temperature terms: the one place
each is defined. Every reader, simulator, model, projection and figure imports them from here.

Sources
    k_B      CODATA 2018 (Tiesinga et al. 2021, Rev. Mod. Phys. 93:025010): 8.617 333 262 × 10⁻⁵ eV K⁻¹,
             exact since the 2019 redefinition of the SI.
    M(C), M(H)  IUPAC standard atomic weights (Wieser 2006, Pure Appl. Chem. 78:2051): 12.0107 and
             1.00794 g mol⁻¹, so M(CH4) = 16.04246 g mol⁻¹ (NIST Chemistry WebBook: 16.0425).
    R_Earth  authalic radius of the GRS 80 / WGS 84 ellipsoid (Moritz 2000, J. Geod. 74:128): the
             sphere of the ellipsoid's surface area, so areas of lat/lon cells sum to the Earth's.
    year     the Julian year, 365.25 days of 86 400 s.
"""

from __future__ import annotations

import numpy as np

K_BOLTZMANN_EV = 8.617333262e-5  # eV K⁻¹
KELVIN = 273.15  # K at 0 °C

C_MOLAR_MASS = 12.0107  # g mol⁻¹
H_MOLAR_MASS = 1.00794  # g mol⁻¹
CH4_MOLAR_MASS = C_MOLAR_MASS + 4 * H_MOLAR_MASS  # 16.04246 g mol⁻¹

SECONDS_PER_DAY = 86_400.0
DAYS_PER_YEAR = 365.25
SECONDS_PER_YEAR = DAYS_PER_YEAR * SECONDS_PER_DAY

EARTH_RADIUS_M = 6_371_007.2

# Unit factors: SI prefixes, time units in seconds, areas in m², masses per tera- and petagram.
SI_PREFIX = {"p": 1e-12, "n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0, "k": 1e3}
SECONDS_PER = {"s": 1.0, "min": 60.0, "h": 3600.0, "d": SECONDS_PER_DAY, "yr": SECONDS_PER_YEAR}
M2_PER = {"m2": 1.0, "ha": 1e4}
NMOL_PER_MOL = 1e9
G_PER_TG = 1e12
G_PER_PG = 1e15

# Reference temperature T_C of the Arrhenius term (°C): lnR is ln|F| at this soil temperature.
T_REF_C = 15.0


def inverse_kt(temp_c):
    """1/(k·T) in eV⁻¹ for a temperature in °C."""
    return 1.0 / (K_BOLTZMANN_EV * (np.asarray(temp_c, dtype=float) + KELVIN))


def celsius_from_inverse_kt(value):
    """The temperature (°C) whose 1/(k·T) is ``value`` (eV⁻¹)."""
    return 1.0 / (K_BOLTZMANN_EV * np.asarray(value, dtype=float)) - KELVIN


def arrhenius_x(temp_c, t_ref_c: float = T_REF_C):
    """x = 1/(k·T_C) − 1/(k·T) in eV⁻¹ for soil temperature T in °C; positive above T_C."""
    return inverse_kt(t_ref_c) - inverse_kt(temp_c)


def fold_change(E, t1_c, t2_c):
    """Flux ratio F(t2)/F(t1) = exp(E·(1/(k·T1) − 1/(k·T2))) for activation energy E (eV)."""
    return np.exp(np.asarray(E, dtype=float) * (inverse_kt(t1_c) - inverse_kt(t2_c)))


def q10(E, t_c):
    """Q10 over [t_c, t_c + 10 °C] for activation energy E (eV)."""
    return fold_change(E, t_c, np.asarray(t_c, dtype=float) + 10.0)
