"""The project's one data error: names file, row and column, and says what to do."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Bad input. Rendered on one line as ``FILE:ROW:COLUMN: what is wrong — what to do``.

    ``row`` is the 1-based line number in the file (header = line 1) where it is known, else ``-``.
    Entry points turn it into exit code 2 with that single line on stderr.
    """

    def __init__(self, file: str | Path | None, row: int | str | None, column: str | None,
                 problem: str, fix: str):
        self.file = str(file) if file is not None else "-"
        self.row = "-" if row is None else row
        self.column = column or "-"
        self.problem = problem
        self.fix = fix
        where = "" if file is None and row is None and column is None else \
            f"{self.file}:{self.row}:{self.column}: "
        super().__init__(f"{where}{problem} — {fix}")


def file_row(index_position: int, header_lines: int = 1) -> int:
    """1-based file line of a 0-based data-row position (after ``header_lines`` header lines)."""
    return int(index_position) + header_lines + 1
