"""Speed and peak memory of the file readers on large synthetic files.

    python -m benchmarks.readers [--rows 3300000] [--hh-rows 175000] [--hh-files 3] [--code DIR]

Writes into a temporary folder (removed afterwards) a synthetic chamber CSV of ``--rows`` rows
(sites named ``SYNTHETIC-…``) and ``--hh-files`` synthetic FLUXNET-CH4 half-hourly files of
``--hh-rows`` half-hours each (sites ``XS-Y…``, with their site table), laid out like the product:
``TIMESTAMP_START``/``TIMESTAMP_END`` as YYYYMMDDHHMM, ``-9999`` for missing values, the columns
of a FLUXNET-CH4 HH file. Each reader then runs in a fresh child process, which reports its wall
time and its peak resident memory (``getrusage``): ``python -m data.inspect`` on the chamber CSV,
the chamber reader alone, the half-hourly reader on one file and on the folder.

``--code DIR`` runs the readers from another checkout of the project (e.g. an export of an
earlier commit) so that two versions can be compared on the same files.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
CHUNK = 500_000  # rows generated and written at a time

# FLUXNET-CH4 half-hourly columns after the timestamps (FLX_*_FLUXNET-CH4_HH_*.csv).
HH_COLUMNS = ("NEE", "H", "LE", "FCH4", "USTAR", "SW_IN", "SW_OUT", "LW_IN", "LW_OUT", "PPFD_IN",
              "NETRAD", "VPD", "RH", "PA", "TA", "P", "WS", "WD", "TS_1", "TS_2", "TS_3", "SWC_1",
              "SWC_2", "WTD", "G", "GPP_NT", "RECO_NT", "GPP_DT", "RECO_DT", "NEE_F", "H_F",
              "LE_F", "FCH4_F", "TA_F", "VPD_F", "WTD_F", "FCH4_F_ANNOPTLM", "FCH4_F_ANNOPTLM_QC")


def write_chamber_csv(path: Path, rows: int, seed: int = 0) -> None:
    """A chamber CSV (data/chamber.py format) of ``rows`` site-days, one day per row and site."""
    rng = np.random.default_rng(seed)
    days_per_site = 3650
    n_sites = -(-rows // days_per_site)
    lat = rng.uniform(28.0, 38.0, n_sites).round(2)
    lon = rng.uniform(90.0, 104.0, n_sites).round(2)
    eco = np.where(np.arange(n_sites) % 2 == 0, "wetland", "grassland")
    start = np.datetime64("2010-01-01")
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.write("site,date,flux,flux_unit,soil_temp_c,ecosystem,latitude,longitude,swc\n")
        for first in range(0, rows, CHUNK):
            k = np.arange(first, min(first + CHUNK, rows))
            site, day = k // days_per_site, k % days_per_site
            temp = 8.0 + 10.0 * np.sin(2 * np.pi * day / 365.25) + rng.normal(0, 2, k.size)
            flux = np.where(eco[site] == "wetland", 1.0, -0.1) * np.exp(0.08 * temp) \
                * rng.lognormal(0, 0.4, k.size)
            chunk = pd.DataFrame({
                "site": np.char.add("SYNTHETIC-", np.char.zfill(site.astype(str), 4)),
                "date": (start + day.astype("timedelta64[D]")).astype(str),
                "flux": flux.round(3), "flux_unit": "nmol m-2 s-1", "soil_temp_c": temp.round(1),
                "ecosystem": eco[site], "latitude": lat[site], "longitude": lon[site],
                "swc": rng.uniform(0.1, 0.6, k.size).round(2)})
            chunk.to_csv(out, header=False, index=False)


def write_fluxnet_hh(path: Path, rows: int, seed: int = 0) -> None:
    """A FLUXNET-CH4 half-hourly file of ``rows`` half-hours from 2010-01-01, ~15 % of the
    measured flux and a few drivers missing (-9999), values with full float precision."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2010-01-01")
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.write(",".join(("TIMESTAMP_START", "TIMESTAMP_END", *HH_COLUMNS)) + "\n")
        for first in range(0, rows, CHUNK):
            k = np.arange(first, min(first + CHUNK, rows))
            begin = start + pd.to_timedelta(k * 30, unit="min")
            day = k / 48.0
            ts = 6.0 + 9.0 * np.sin(2 * np.pi * day / 365.25) + rng.normal(0, 0.5, k.size)
            values = {c: rng.normal(0, 50, k.size) for c in HH_COLUMNS}
            values.update(TS_1=ts, TS_2=ts - 0.5, TS_3=ts - 1.0, SWC_1=rng.uniform(40, 90, k.size),
                          SWC_2=rng.uniform(40, 90, k.size), WTD=rng.normal(-0.1, 0.05, k.size),
                          WTD_F=rng.normal(-0.1, 0.05, k.size), USTAR=rng.uniform(0, 1, k.size),
                          FCH4=20 * np.exp(0.1 * ts) * rng.lognormal(0, 0.3, k.size),
                          FCH4_F=20 * np.exp(0.1 * ts), GPP_NT=rng.uniform(0, 20, k.size),
                          GPP_DT=rng.uniform(0, 20, k.size), NEE_F=rng.normal(-2, 3, k.size))
            frame = pd.DataFrame(values)
            for c in ("FCH4", "WTD", "SWC_2", "LE"):
                frame.loc[rng.uniform(size=k.size) < 0.15, c] = -9999
            frame.insert(0, "TIMESTAMP_END", (begin + pd.Timedelta(minutes=30)).strftime("%Y%m%d%H%M"))
            frame.insert(0, "TIMESTAMP_START", begin.strftime("%Y%m%d%H%M"))
            frame.to_csv(out, header=False, index=False)


def hh_name(k: int, rows: int) -> tuple[str, str]:
    """(site id, file name) of the k-th synthetic half-hourly file."""
    site = f"XS-Y{k:02d}"
    last = (pd.Timestamp("2010-01-01") + pd.Timedelta(minutes=30 * (rows - 1))).year
    return site, f"FLX_{site}_FLUXNET-CH4_HH_2010-{last}_1-1.csv"


# ---------------------------------------------------------------- one reader in a child process
def _child(kind: str, path: str) -> dict:
    t0 = time.perf_counter()
    if kind == "inspect":
        from data.inspect import main

        with contextlib.redirect_stdout(io.StringIO()):
            rc = main(["--data", path, "--json"])
        if rc:
            raise SystemExit(f"data.inspect exited {rc}")
        rows = None
    elif kind == "chamber":
        from data.chamber import read_chamber_csv

        rows = len(read_chamber_csv(path).table)
    else:
        from data.fluxnet import read_fluxnet_ch4

        folder = Path(path) if Path(path).is_dir() else Path(path).parent
        rows = len(read_fluxnet_ch4(path, metadata=folder / "synthetic_site_metadata.csv").table)
    wall = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    import data

    return {"wall_s": wall, "peak_rss_mb": peak_kib / 1024, "rows": rows,
            "module": str(Path(data.__file__).resolve())}


def run_child(kind: str, path: Path, code: Path) -> dict:
    """``_child`` in a fresh interpreter that imports the project from ``code``; this file is run
    by path, so a checkout without it can be timed too."""
    # the parsed-table cache off: the benchmark times the readers, not a cache hit
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(code), "TPFLUX_TABLE_CACHE": "off"}
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(path)], cwd=code, env=env,
                         capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{kind} failed:\n{out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if not result.pop("module").startswith(str(code)):
        raise SystemExit(f"the readers were not imported from {code}")
    return result


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        print(json.dumps(_child(argv[1], argv[2])))
        return
    p = argparse.ArgumentParser(prog="python -m benchmarks.readers",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=3_300_000, help="rows of the chamber CSV")
    p.add_argument("--hh-rows", type=int, default=175_000,
                   help="half-hours per FLUXNET-CH4 file (175,000 ≈ 10 years)")
    p.add_argument("--hh-files", type=int, default=3, help="half-hourly files in the folder")
    p.add_argument("--code", type=Path, default=ROOT, help="checkout whose readers are timed")
    p.add_argument("--only", nargs="*", choices=("inspect", "chamber", "fluxnet-hh", "fluxnet-folder"),
                   help="run only these readers")
    args = p.parse_args(argv)
    code = args.code.resolve()
    with tempfile.TemporaryDirectory(prefix="tpflux-readers-") as tmp:
        tmp = Path(tmp)
        chamber = tmp / "synthetic_chambers.csv"
        write_chamber_csv(chamber, args.rows)
        folder = tmp / "fluxnet_hh"
        folder.mkdir()
        meta = ["ID,LAT,LON,IGBP"]
        for k in range(args.hh_files):
            site, name = hh_name(k, args.hh_rows)
            write_fluxnet_hh(folder / name, args.hh_rows, seed=k)
            meta.append(f"{site},{60 + k},{20 + k},WET")
        (folder / "synthetic_site_metadata.csv").write_text("\n".join(meta) + "\n")
        one = folder / hh_name(0, args.hh_rows)[1]
        cases = {"inspect": chamber, "chamber": chamber, "fluxnet-hh": one, "fluxnet-folder": folder}
        size = {"inspect": chamber.stat().st_size, "chamber": chamber.stat().st_size,
                "fluxnet-hh": one.stat().st_size,
                "fluxnet-folder": sum(f.stat().st_size for f in folder.glob("FLX_*"))}
        print(f"code: {code}; {os.cpu_count()} cores")
        print(f"{'reader':<16}{'input':>12}{'rows out':>12}{'wall s':>9}{'peak RSS MB':>13}")
        for kind in args.only or cases:
            r = run_child("inspect" if kind == "inspect" else
                          "chamber" if kind == "chamber" else "fluxnet", cases[kind], code)
            rows = "" if r["rows"] is None else f"{r['rows']:,}"
            print(f"{kind:<16}{size[kind] / 1e6:>10.0f}MB{rows:>12}{r['wall_s']:>9.1f}"
                  f"{r['peak_rss_mb']:>13.0f}", flush=True)


if __name__ == "__main__":
    main()
