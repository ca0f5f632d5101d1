"""Dataset registry: pinned files in the download cache are checked, and a mismatch is refused
with a clear message — at the registry, at an entry point, and when downloading."""

from __future__ import annotations

import contextlib
import io
import shutil
import urllib.request
from pathlib import Path

import pytest

from data import registry
from data.errors import DataError
from tests.shared_data import require_data

JIAN = registry.DATASETS["jian2022"]


@pytest.fixture(scope="module")
def pinned_folder() -> Path:
    """The real jian2022 folder, located through the registry (its files match the pins)."""
    return require_data(registry.dataset_folder, "jian2022")


@pytest.fixture
def cache(tmp_path, monkeypatch, pinned_folder) -> Path:
    """A user cache (XDG_CACHE_HOME) holding a copy of the pinned jian2022 files."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    folder = registry.cache_dir() / JIAN.folder
    shutil.copytree(pinned_folder, folder)
    for f in folder.iterdir():
        f.chmod(0o644)
    return folder


def _tamper(path: Path) -> None:
    """A truncated copy: what an interrupted manual download or a disk error leaves."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_cached_files_matching_their_pins_are_accepted(cache, monkeypatch):
    monkeypatch.setenv(registry.ENV_VAR, str(registry.cache_dir()))
    assert registry.dataset_folder("jian2022") == cache
    for rf in JIAN.remote:
        assert registry.sha256(cache / rf.path) == rf.sha256


def test_tampered_cached_file_is_refused_with_a_clear_message(cache, monkeypatch):
    monkeypatch.setenv(registry.ENV_VAR, str(registry.cache_dir()))
    bad = cache / "GlobalRs.csv"
    _tamper(bad)
    with pytest.raises(DataError) as info:
        registry.dataset_folder("jian2022")
    message = str(info.value)
    assert Path(info.value.file) == bad
    assert message.startswith(f"{bad}:-:-: ")
    assert "checksum does not match" in message and "delete" in message and str(bad) in message


def test_default_search_order_reaches_the_cache_and_refuses(cache, tmp_path, monkeypatch):
    """Without TPFLUX_DATA and without a ../shared/data folder the cache is the data root."""
    monkeypatch.delenv(registry.ENV_VAR, raising=False)
    nowhere = tmp_path / "checkout" / "tpflux"
    nowhere.mkdir(parents=True)
    monkeypatch.setattr(registry, "_checkout_root", lambda: nowhere)
    monkeypatch.chdir(nowhere)
    assert registry.data_roots() == [registry.cache_dir()]
    assert registry.dataset_folder("jian2022") == cache
    _tamper(cache / "RaGPP.csv")
    with pytest.raises(DataError, match="checksum does not match"):
        registry.dataset_folder("jian2022")


def test_a_data_folder_outside_the_cache_is_the_users_own(cache, tmp_path, monkeypatch):
    """Files in a folder the user points TPFLUX_DATA at are read as they are (not pinned)."""
    own = tmp_path / "own"
    shutil.copytree(cache.parent, own)
    _tamper(own / JIAN.folder / "GlobalRs.csv")
    monkeypatch.setenv(registry.ENV_VAR, str(own))
    assert registry.dataset_folder("jian2022") == own / JIAN.folder


def test_budget_job_exits_2_on_a_tampered_cache_and_writes_nothing(cache, tmp_path, monkeypatch,
                                                                   capsys):
    from inference import budget

    monkeypatch.setenv(registry.ENV_VAR, str(registry.cache_dir()))
    bad = cache / "GlobalGPP_Sum.csv"
    _tamper(bad)
    out = tmp_path / "run"
    assert budget.main(["--out", str(out), "--no-bayes", "--no-rf"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {bad}:-:-: checksum does not match")
    assert not out.exists()


# ---------------------------------------------------------------- downloads
def _serve(monkeypatch, payload: dict[str, bytes]) -> list[str]:
    """urlopen replaced by a local answer per URL; returns the list of URLs asked for."""
    asked = []

    def urlopen(url, timeout=None):
        asked.append(url)
        return contextlib.closing(io.BytesIO(payload[url]))

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return asked


def test_download_with_a_wrong_checksum_is_refused_and_leaves_nothing(pinned_folder, tmp_path,
                                                                      monkeypatch):
    payload = {rf.url: (pinned_folder / rf.path).read_bytes() for rf in JIAN.remote}
    changed = JIAN.remote[2]
    payload[changed.url] = payload[changed.url] + b"\n# edited upstream\n"
    _serve(monkeypatch, payload)
    with pytest.raises(DataError) as info:
        registry.fetch(JIAN, root=tmp_path)
    assert info.value.file == changed.url
    assert f"expected {changed.sha256[:12]}" in str(info.value)
    folder = tmp_path / JIAN.folder
    assert not (folder / changed.path).exists()
    assert not list(folder.glob(".*"))  # no partial download left behind


def test_download_with_pinned_bytes_is_kept_and_not_repeated(pinned_folder, tmp_path, monkeypatch):
    payload = {rf.url: (pinned_folder / rf.path).read_bytes() for rf in JIAN.remote}
    asked = _serve(monkeypatch, payload)
    folder = registry.fetch(JIAN, root=tmp_path)
    assert len(asked) == len(JIAN.remote)
    for rf in JIAN.remote:
        assert registry.sha256(folder / rf.path) == rf.sha256
    registry.fetch(JIAN, root=tmp_path)
    assert len(asked) == len(JIAN.remote)  # already present with the right checksum
    _tamper(folder / JIAN.remote[0].path)
    registry.fetch(JIAN, root=tmp_path)
    assert asked[len(JIAN.remote):] == [JIAN.remote[0].url]  # only the damaged file again
    assert registry.sha256(folder / JIAN.remote[0].path) == JIAN.remote[0].sha256


# ---------------------------------------------------------------- layout
def _imports(path: Path) -> set[str]:
    """Project modules imported anywhere in a source file (function-level imports included)."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found


def test_data_modules_form_no_import_cycle_and_import_no_later_layer():
    """The registry dispatches to the readers and simulators, never the other way round; data/
    imports nothing of models/, inference/, reports/ or tpflux/."""
    import graphlib

    folder = Path(registry.__file__).parent
    modules = {f"data.{p.stem}": p for p in folder.glob("*.py")}
    graph = {}
    for name, path in modules.items():
        imported = _imports(path)
        later = sorted(m for m in imported if m.split(".")[0] in ("models", "inference", "reports", "tpflux"))
        assert not later, (name, later)
        graph[name] = {m for m in imported if m in modules and m != name}
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError naming the circle
