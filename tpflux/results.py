"""What every result object shares: the DataTree, the summary table, the gate, the typed config,
and saving to / loading from a run folder.

A job's result class names its files (``FILES``); ``save`` writes them into one run folder
atomically (``data.storage.RunFolder``) and ``tpflux.load`` reads them back into the same class.
The typed configuration travels in the DataTree attrs (``tpflux_config``, JSON), so a run folder
can be refitted from its attrs alone.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import ClassVar

import pandas as pd

from data import storage
from data.errors import DataError


class Config:
    """Mixin for the frozen dataclass configurations of the jobs: dict and attrs round trips."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict):
        """The config from a dict that may hold more keys (a run record): unknown keys are ignored,
        nested dataclasses and tuples rebuilt."""
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name not in values:
                continue
            value, hint = values[f.name], hints[f.name]
            if dataclasses.is_dataclass(hint) and isinstance(value, dict):
                value = hint(**value)
            elif isinstance(value, list):
                value = tuple(value)
            kwargs[f.name] = value
        return cls(**kwargs)

    @classmethod
    def from_attrs(cls, attrs: dict):
        raw = attrs.get("tpflux_config")
        if raw is None:
            raise DataError(None, None, "tpflux_config", "the run's attrs hold no configuration",
                            "refit with explicit options")
        return cls.from_dict(json.loads(raw) if isinstance(raw, str) else dict(raw))


@dataclasses.dataclass
class Result:
    """Base of the result objects. Subclasses set ``JOB``, ``FILES`` and ``CONFIG``."""

    JOB: ClassVar[str] = ""
    TREE_FILE: ClassVar[str | None] = None
    SUMMARY_FILE: ClassVar[str] = ""
    CONFIG: ClassVar[type] = Config

    datatree: object | None
    table: pd.DataFrame
    diagnostics: dict | None
    config: Config
    extra_tables: dict[str, pd.DataFrame] = dataclasses.field(default_factory=dict)
    extra_trees: dict[str, object] = dataclasses.field(default_factory=dict)
    path: Path | None = None  # the run folder, once saved or when loaded

    def summary(self) -> pd.DataFrame:
        """The summary table the run folder's CSV holds (95 % equal-tailed intervals)."""
        return self.table.copy()

    def result_text(self) -> str:
        """The printed result: the numbers to cite, with their intervals."""
        return self.table.to_string(index=False)

    def __str__(self) -> str:
        return self.result_text()

    def gate_advice(self) -> str:
        """What to try when the convergence gate fails (never a setting already in use)."""
        return "more --tune/--draws"

    @property
    def files(self) -> list[str]:
        """The files ``save`` writes (besides the run marker ``run.json``)."""
        names = [self.SUMMARY_FILE, *self.extra_tables, *self.extra_trees]
        if self.datatree is not None and self.TREE_FILE:
            names.insert(0, self.TREE_FILE)
        return names + (["diagnostics.json"] if self.diagnostics is not None else [])

    @property
    def synthetic(self) -> bool:
        return bool(getattr(self.config, "dataset", None) in ("synthetic", "synthetic-warming",
                                                               "synthetic-grid")
                    or (self.diagnostics or {}).get("synthetic"))

    @property
    def run_id(self) -> str | None:
        attrs = getattr(self.datatree, "attrs", {}) or {}
        return attrs.get("run_id")

    # ------------------------------------------------------------ saving and loading
    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the run folder (the same files the command line writes), atomically as a whole:
        a failure leaves ``path`` as it was. ``overwrite`` replaces a previous run folder."""
        with storage.RunFolder(path, job=self.JOB, run_id=self.run_id, overwrite=overwrite) as run:
            if self.datatree is not None and self.TREE_FILE:
                storage.write_datatree(run.path / self.TREE_FILE, self.datatree)
            storage.write_csv(run.path / self.SUMMARY_FILE, self.table)
            for name, table in self.extra_tables.items():
                storage.write_csv(run.path / name, table)
            for name, tree in self.extra_trees.items():
                storage.write_datatree(run.path / name, tree)
            if self.diagnostics is not None:
                storage.write_json(run.path / "diagnostics.json", self.diagnostics)
            self._write_extra(run.path)
        self.path = Path(path)
        return self.path

    def _write_extra(self, folder: Path) -> None:
        """Files a job writes besides its tables and trees (figures), inside the run's staging
        folder so that they land with the rest or not at all."""

    @classmethod
    def load(cls, path: str | Path) -> "Result":
        folder = Path(path)
        tree = None
        if cls.TREE_FILE and (folder / cls.TREE_FILE).exists():
            tree = storage.read_datatree(folder / cls.TREE_FILE)
        table = storage.read_csv(folder / cls.SUMMARY_FILE, keep_default_na=True)
        diag_file = folder / "diagnostics.json"
        diagnostics = storage.read_json(diag_file) if diag_file.exists() else None
        attrs = dict(tree.attrs) if tree is not None else {}
        extra_tables, extra_trees = cls._load_extra(folder)
        if not attrs:
            attrs = next((dict(t.attrs) for t in extra_trees.values()), {})
        config = cls.CONFIG.from_attrs(attrs) if attrs.get("tpflux_config") else cls.CONFIG()
        return cls(datatree=tree, table=table, diagnostics=diagnostics, config=config,
                   extra_tables=extra_tables, extra_trees=extra_trees)

    @classmethod
    def _load_extra(cls, folder: Path) -> tuple[dict, dict]:
        return {}, {}

    def __repr__(self) -> str:
        verdict = (self.diagnostics or {}).get("verdict", "—")
        tag = " SYNTHETIC" if self.synthetic else ""
        return f"<{type(self).__name__}{tag}: {len(self.table)} summary rows, gate {verdict}>"
