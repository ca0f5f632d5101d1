"""A small SYNTHETIC daily driver grid over the Tibetan Plateau, for the gridded projection demo.

Not observations: every field is simulated, and the dataset says so (``attrs["synthetic"]``,
``title``). Canonical names and units, as ``data.grid.read_driver_grid`` returns them:
``soil_temp_c`` (°C), ``swc`` (m³ m⁻³), ``le`` (W m⁻²) on (lat, lon, time); ``wetland_fraction``,
``grassland_fraction`` (0–1) and ``cell_area`` (m²) on (lat, lon).

Design: a plateau whose elevation falls from ~5000 m in the north-west to ~3300 m at the eastern
and southern margins; annual-mean soil temperature falls 5 °C per km of elevation (≈ 6.5 °C at
3500 m, as at the Hongyuan meadow; below zero above ~4800 m), half-range 9–11 °C peaking in late
July, plus AR(1) day-to-day anomalies (sd 1.5 °C). Soil water follows the summer monsoon and rises
eastwards; latent heat follows thaw and soil water. Wetlands are concentrated in two blobs (the
Zoige marshes near 33.5 °N 102.5 °E and the Yellow-River source region near 34.5 °N 98 °E);
grassland covers most of the rest, less in the arid north-west.

``to_era5_land(ds)`` writes the same cube with ERA5-Land names and units (``stl1`` K, ``swvl1``
m³ m⁻³, ``slhf`` J m⁻² per day, downward positive; dims latitude/longitude/valid_time), to exercise
the reader.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from data.constants import DAYS_PER_YEAR, KELVIN, SECONDS_PER_DAY
from data.grid import cell_areas

SYNTHETIC_TITLE = "SYNTHETIC Tibetan Plateau driver grid (simulated, not observations)"


def simulate_tibetan_grid(n_lat: int = 10, n_lon: int = 16, start: str = "2015-01-01",
                          n_days: int = 365, lat_range: tuple[float, float] = (28.0, 38.0),
                          lon_range: tuple[float, float] = (86.0, 102.0),
                          seed: int = 20261122) -> xr.Dataset:
    """Simulated daily drivers + ecosystem fractions + cell areas (see the module docstring)."""
    rng = np.random.default_rng(seed)
    dlat = (lat_range[1] - lat_range[0]) / n_lat
    dlon = (lon_range[1] - lon_range[0]) / n_lon
    lat = lat_range[0] + dlat * (np.arange(n_lat) + 0.5)
    lon = lon_range[0] + dlon * (np.arange(n_lon) + 0.5)
    time = pd.date_range(start, periods=n_days, freq="D")

    # Relative position on the plateau: 0 at the south-east margin, 1 in the north-west.
    la, lo = np.meshgrid((lat - 28.0) / 10.0, (lon - 86.0) / 16.0, indexing="ij")
    upland = np.clip(0.55 * la + 0.45 * (1.0 - lo), 0.0, 1.0)
    elevation = 3300.0 + 1700.0 * upland + rng.normal(0.0, 80.0, upland.shape)
    mean_temp = 24.0 - 0.005 * elevation
    half_range = 9.0 + 2.0 * upland

    doy = time.day_of_year.to_numpy(dtype=float)
    seasonal = np.cos(2.0 * np.pi * (doy - 205.0) / DAYS_PER_YEAR)  # warmest in late July
    anomaly = np.empty((n_lat, n_lon, n_days))
    anomaly[..., 0] = rng.normal(0.0, 1.5, (n_lat, n_lon))
    innovations = rng.normal(0.0, 1.5 * np.sqrt(1 - 0.8 ** 2), (n_lat, n_lon, n_days))
    for t in range(1, n_days):
        anomaly[..., t] = 0.8 * anomaly[..., t - 1] + innovations[..., t]
    soil_temp = mean_temp[..., None] + half_range[..., None] * seasonal + anomaly

    monsoon = np.exp(-0.5 * ((doy - 215.0) / 45.0) ** 2)  # June–September rains
    wetness = 0.1 + 0.9 * lo  # wetter eastwards
    swc = (0.08 + 0.12 * wetness[..., None] + 0.18 * wetness[..., None] * monsoon
           + rng.normal(0.0, 0.015, (n_lat, n_lon, n_days)))
    swc = np.clip(swc, 0.03, 0.55)
    thawed = 1.0 / (1.0 + np.exp(-soil_temp / 1.5))
    le = 5.0 + 90.0 * thawed * (swc / 0.4) + rng.normal(0.0, 5.0, swc.shape)

    def blob(lat0, lon0, width):
        g_lat, g_lon = np.meshgrid(lat, lon, indexing="ij")
        return np.exp(-0.5 * (((g_lat - lat0) / width) ** 2 + ((g_lon - lon0) / width) ** 2))

    wetland = np.clip(0.01 + 0.25 * blob(33.5, 102.5, 1.2) + 0.15 * blob(34.5, 98.0, 1.5)
                      + rng.uniform(0.0, 0.01, la.shape), 0.0, 0.4)
    grassland = np.clip(0.75 - 0.45 * upland * (1.0 - lo) + rng.uniform(-0.05, 0.05, la.shape),
                        0.05, 1.0 - wetland)

    dims3 = ("lat", "lon", "time")
    ds = xr.Dataset(
        {
            "soil_temp_c": (dims3, soil_temp, {"units": "degC", "long_name": "soil temperature"}),
            "swc": (dims3, swc, {"units": "m3 m-3", "long_name": "volumetric soil water"}),
            "le": (dims3, le, {"units": "W m-2", "long_name": "latent heat flux (upward)"}),
            "wetland_fraction": (("lat", "lon"), wetland, {"units": "1"}),
            "grassland_fraction": (("lat", "lon"), grassland, {"units": "1"}),
        },
        coords={"lat": ("lat", lat, {"standard_name": "latitude", "units": "degrees_north"}),
                "lon": ("lon", lon, {"standard_name": "longitude", "units": "degrees_east"}),
                "time": time},
    )
    ds["cell_area"] = cell_areas(lat, lon)
    ds.attrs.update(title=SYNTHETIC_TITLE, synthetic="true", source="tpflux simulator",
                    seed=int(seed), Conventions="CF-1.8")
    return ds


def to_era5_land(ds: xr.Dataset) -> xr.Dataset:
    """The same cube under ERA5-Land names, units, sign conventions and dimension names."""
    out = xr.Dataset(
        {
            "stl1": (ds["soil_temp_c"] + KELVIN).assign_attrs(units="K"),
            "swvl1": ds["swc"].assign_attrs(units="m**3 m**-3"),
            "slhf": (-ds["le"] * SECONDS_PER_DAY).assign_attrs(units="J m**-2"),
            "wetland_fraction": ds["wetland_fraction"],
            "grassland_fraction": ds["grassland_fraction"],
            "cell_area": ds["cell_area"],
        },
        attrs=dict(ds.attrs),
    )
    return out.rename({"lat": "latitude", "lon": "longitude", "time": "valid_time"})
