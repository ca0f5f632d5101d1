"""Dataset registry: a name → its files, found in a data folder or downloaded with checksums.

Search order for the data folder: ``$TPFLUX_DATA``; else ``../shared/data`` beside the project
checkout (or beside the working directory); else the user cache (``$XDG_CACHE_HOME/tpflux`` or
``~/.cache/tpflux``), into which pinned public files can be downloaded with sha256 checks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import urllib.request
from pathlib import Path

from data.errors import DataError
from data.storage import atomic_path

ENV_VAR = "TPFLUX_DATA"


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    """A public file whose bytes are identical to the one the registry expects (sha256-pinned)."""

    path: str  # relative to the dataset folder
    url: str
    sha256: str


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    name: str
    folder: str | None  # sub-folder of the data root; None for generated datasets
    description: str
    citation: str
    remote: tuple[RemoteFile, ...] = ()


_GLOBALC = "https://raw.githubusercontent.com/PNNL-TES/GlobalC/9d43778d/data/"

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("ch4-sites", None,
                    "FLUXNET-CH4 freshwater wetlands (daily) + Hongyuan Tibetan alpine-meadow chambers",
                    "Delwiche et al. 2021, ESSD 13:3607; Bond-Lamberty et al. 2020, GCB (COSORE)"),
        DatasetSpec("fluxnet-ch4", "fluxnet_ch4_dd",
                    "FLUXNET-CH4 v1.0 daily site files of freshwater wetlands",
                    "Delwiche et al. 2021, ESSD 13:3607; Knox et al. 2019, BAMS"),
        DatasetSpec("hongyuan", "cosore_hongyuan_ch4",
                    "Automated-chamber CH4 at Hongyuan, Tibetan Plateau (COSORE d20200407_WANG)",
                    "Bond-Lamberty et al. 2020, GCB (COSORE); contributor Jinsong Wang"),
        DatasetSpec("jian2022", "jian2022_globalc",
                    "Inputs of the global GPP / soil-respiration consistency analysis",
                    "Jian et al. 2022, Nat. Commun. 13:4781",
                    remote=tuple(
                        RemoteFile(name, _GLOBALC + name, sha)
                        for name, sha in (
                            ("GlobalRs.csv", "ab0826ef975a5537e15a2b4f2455be6d7abe4780616fcc7bae73ccf77f677716"),
                            ("GlobalGPP_Sum.csv", "d570ad7935616872b2b12352e0fcc52fe8fa4067eb012e42b049fcd153fa0b88"),
                            ("RaGPP.csv", "841db98a330f7ac606d8bb054236b1eea21e209b7458350d97c5ab1634513a9f"),
                            ("FlFsFrSummary.csv", "3d51344dafdabce547de547c7ed290348fd929a2dc757a76bf0f83359234c12e"),
                            ("ITONPP.CSV", "bc81d368323c73cfca5549c1b5020f0a4e3c744dd4bdc4754cb3f1d5404c7be9"),
                            ("Fire_burn_C.csv", "7cb92012d7461ab8e8c0fd311584478618308ea564572e5cd9c90f64c8f37b56"),
                            ("igbp_mapping.csv", "90688c51b4bd85a0e221d055de103504a5e4b122065863f5d26600077eda2971"),
                        )
                    )),
        DatasetSpec("srdb", "srdb", "SRDB temperature-response equations and field descriptions",
                    "Bond-Lamberty & Thomson 2010, Biogeosciences"),
        DatasetSpec("mgrsd", "mgrsd", "MGRsD monthly global soil respiration database",
                    "Jian et al. 2020, ESSD"),
        DatasetSpec("jian-rc-grid", "jian_rc_grid",
                    "Global 0.5° grid of soil-respiration covariates and root contribution",
                    "Jian et al. 2020"),
        DatasetSpec("precip-manipulation", "misc",
                    "CH4 control vs precipitation-manipulation means (COMPASS-DOE methane synthesis)",
                    "COMPASS-DOE/methane-synthesis"),
        DatasetSpec("synthetic", None, "Simulated Tibetan-style CH4 sites with known truth (SYNTHETIC)",
                    "tpflux simulator"),
        DatasetSpec("synthetic-warming", None,
                    "Simulated warming experiments with known response ratios (SYNTHETIC)",
                    "tpflux simulator"),
    )
}


def _checkout_root() -> Path:
    return Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tpflux"


def data_roots() -> list[Path]:
    """Candidate data folders, most specific first."""
    env = os.environ.get(ENV_VAR)
    if env:
        return [Path(env).expanduser()]
    roots = [_checkout_root().parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    roots = [r for i, r in enumerate(roots) if r.is_dir() and r.resolve() not in
             {x.resolve() for x in roots[:i] if x.is_dir()}]
    return [*roots, cache_dir()]


def spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(None, None, None, f"unknown dataset '{name}'",
                        f"use one of {', '.join(DATASETS)}, or --data PATH for your own files") from None


def dataset_folder(name: str, download: bool = False) -> Path:
    """The folder holding dataset ``name``; downloads pinned files into the cache if asked."""
    ds = spec(name)
    if ds.folder is None:
        raise DataError(None, None, None, f"dataset '{name}' is generated, not read from files",
                        "load it with data.registry.load_observations")
    for root in data_roots():
        folder = root / ds.folder
        if folder.is_dir() and any(folder.iterdir()):
            verify_cached(ds, folder)
            return folder
    if download and ds.remote:
        return fetch(ds)
    where = ", ".join(str(r) for r in data_roots())
    raise DataError(None, None, None, f"dataset '{name}' ({ds.folder}/) not found in {where}",
                    f"set {ENV_VAR} to the folder that holds {ds.folder}/")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_cached(ds: DatasetSpec, folder: Path) -> None:
    """Refuse a file in the download cache whose checksum differs from the pinned one."""
    if folder.resolve().is_relative_to(cache_dir().resolve()):
        for rf in ds.remote:
            f = folder / rf.path
            if f.exists() and sha256(f) != rf.sha256:
                raise DataError(f, None, None, "checksum does not match the pinned sha256",
                                f"delete {f} and download it again")


def fetch(ds: DatasetSpec, root: Path | None = None) -> Path:
    """Download ``ds``'s pinned files into the cache, checking sha256; atomic per file."""
    folder = (root or cache_dir()) / ds.folder
    folder.mkdir(parents=True, exist_ok=True)
    for rf in ds.remote:
        target = folder / rf.path
        if target.exists() and sha256(target) == rf.sha256:
            continue
        try:
            with atomic_path(target) as tmp:
                with open(tmp, "wb") as out, urllib.request.urlopen(rf.url, timeout=60) as resp:
                    shutil.copyfileobj(resp, out)
                got = sha256(tmp)
                if got != rf.sha256:
                    raise DataError(rf.url, None, None, f"downloaded file has sha256 {got[:12]}…, "
                                    f"expected {rf.sha256[:12]}…", "the source changed; use a local "
                                    f"copy via {ENV_VAR}")
        except OSError as exc:
            raise DataError(rf.url, None, None, f"download failed ({exc})",
                            f"download it by hand and set {ENV_VAR}") from None
    return folder


# ---------------------------------------------------------------- observation datasets
OBSERVATION_DATASETS = ("ch4-sites", "fluxnet-ch4", "hongyuan", "synthetic")


def load_observations(name: str | None = None, path: str | Path | None = None, *,
                      flux_column: str = "FCH4", per_chamber: bool = True, seed: int = 0):
    """A canonical ``Observations`` from a registry name or from a user's file / folder.

    ``path`` may be a FLUXNET-CH4 file or folder, a COSORE dataset folder, or a chamber CSV
    (see data.chamber). ``seed`` only matters for the simulator. COSORE chambers enter as one
    plot each by default (``per_chamber``): at Hongyuan the site-mean series has too few emission
    days (14 in the growing season) to fit, while the three chamber plots have 89.
    """
    from data.table_cache import cached_observations, cache_folder

    options = {"name": name, "path": path, "flux_column": flux_column, "per_chamber": per_chamber}
    if path is not None:  # a user's FLUXNET-CH4 files also read the registry's site table
        sources = [Path(path), *_fluxnet_metadata_folders()]
    elif (name or "ch4-sites") not in OBSERVATION_DATASETS or name == "synthetic":
        sources = None  # simulated (nothing to key on), or a name the reader refuses
    else:
        sources = [dataset_folder(n) for n in _dataset_parts(name or "ch4-sites")]
    read = lambda: _load_observations(name, path, flux_column=flux_column,  # noqa: E731
                                      per_chamber=per_chamber, seed=seed)
    if sources is None:
        return read()
    return cached_observations(cache_folder(cache_dir() / "tables"), sources, options, read)


def _dataset_parts(name: str) -> tuple[str, ...]:
    return {"ch4-sites": ("fluxnet-ch4", "hongyuan")}.get(name, (name,))


def _load_observations(name, path, *, flux_column, per_chamber, seed):
    from data.table import validate_observations

    if path is not None:
        obs = _read_path(Path(path), flux_column=flux_column, per_chamber=per_chamber)
    else:
        name = name or "ch4-sites"
        if name not in OBSERVATION_DATASETS:
            spec(name)  # unknown names get the registry's error
            raise DataError(None, None, None, f"dataset '{name}' is not an observation table",
                            f"use one of {', '.join(OBSERVATION_DATASETS)}")
        if name == "synthetic":
            from data.synthetic import simulate_observations

            obs, _truth = simulate_observations(seed)
            return obs
        from data import cosore, fluxnet

        readers = {"fluxnet-ch4": lambda f: fluxnet.read_fluxnet_ch4(f, flux_column=flux_column),
                   "hongyuan": lambda f: cosore.read_cosore(f, per_chamber=per_chamber)}
        parts = [readers[part](dataset_folder(part)) for part in _dataset_parts(name)]
        obs = parts[0]
        for more in parts[1:]:
            obs = obs.concat(more)
    obs.table = validate_observations(obs.table, source=name or path)
    return obs


def _read_path(path: Path, *, flux_column: str, per_chamber: bool):
    from data import chamber, cosore, fluxnet

    if not path.exists():
        raise DataError(path, None, None, "no such file or folder", "check the path given to --data")
    if path.is_dir():
        if any(path.glob("FLX_*FLUXNET-CH4*")):
            return fluxnet.read_fluxnet_ch4(path, flux_column=flux_column,
                                            metadata_folders=_fluxnet_metadata_folders())
        if (path / "DESCRIPTION.txt").exists():
            return cosore.read_cosore(path, per_chamber=per_chamber)
        raise DataError(path, None, None, "folder holds neither FLUXNET-CH4 files nor a COSORE dataset",
                        "point --data at FLX_*_FLUXNET-CH4_*.csv files, a COSORE folder or a chamber CSV")
    if "FLUXNET-CH4" in path.name:
        return fluxnet.read_fluxnet_ch4(path, flux_column=flux_column,
                                        metadata_folders=_fluxnet_metadata_folders())
    return chamber.read_chamber_csv(path)


def _fluxnet_metadata_folders() -> list[Path]:
    """The registry's FLUXNET-CH4 folder, whose site table serves a user's own FLUXNET-CH4 files."""
    try:
        return [dataset_folder("fluxnet-ch4")]
    except DataError:
        return []


def add_observation_arguments(parser) -> None:
    """The command-line choice of observations shared by every job that reads them."""
    import argparse

    src = parser.add_mutually_exclusive_group()
    src.add_argument("--dataset", default="ch4-sites", choices=OBSERVATION_DATASETS,
                     help="registry dataset (ch4-sites: FLUXNET-CH4 wetlands + Hongyuan meadow chambers)")
    src.add_argument("--data", default=None,
                     help="your own FLUXNET-CH4 file/folder, COSORE folder or chamber CSV")
    parser.add_argument("--flux-column", default="FCH4", choices=("FCH4", "FCH4_F"),
                        help="FLUXNET-CH4 flux: measured (FCH4) or gap-filled (FCH4_F)")
    parser.add_argument("--per-chamber", action=argparse.BooleanOptionalAction, default=True,
                        help="COSORE data: each chamber is a plot (else one daily site mean)")


def observations_from_args(args):
    """Load what ``add_observation_arguments`` asked for (``args.seed`` feeds the simulator)."""
    return load_observations(None if args.data else args.dataset, args.data, flux_column=args.flux_column,
                             per_chamber=args.per_chamber, seed=getattr(args, "seed", 0))
