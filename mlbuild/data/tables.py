"""Tables between tasks: typed Arrow IPC files, and row views that select rows of one.

A task that reads raw data (CSV, Parquet or Arrow) converts it once, with
:func:`write_table`, to an uncompressed Arrow IPC file ("Feather v2"): column types
survive, nothing formats floats, and readers memory-map it instead of parsing it. Its
bytes depend on the table alone (one record batch, no pandas metadata), so the same data
gives the same sha256 and the same fingerprints downstream.

A split need not copy rows: :func:`write_rows` writes a *row view*, an Arrow file of row
numbers that names the stored table it selects from (its store key and sha256).
:func:`open_table` resolves a view through the verified local cache, on any worker or in
a Batch job, and hands out a :class:`TableView` either way.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from mlbuild.errors import DataError
from mlbuild.store import StoredObject

#: schema metadata key of a row view: the stored table it selects from
ROWS_OF = b"mlbuild.rows_of"
ARROW_MAGIC = b"ARROW1"
PARQUET_MAGIC = b"PAR1"

Resolver = Callable[[StoredObject], Path]


def _format(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(6)
    if head == ARROW_MAGIC:
        return "arrow"
    if head[:4] == PARQUET_MAGIC:
        return "parquet"
    return "csv"


def read_table(path: str | os.PathLike, where: str | None = None):
    """The table in a CSV, Parquet or Arrow IPC file (told apart by their first bytes), as
    a ``pyarrow.Table``. CSV is parsed by pandas, so the same text gives the same values."""
    path, where = Path(path), where or str(path)
    kind = _format(path)
    table = _read(path, where, kind)
    _refuse_duplicate_columns(table.column_names, where)
    return table


def _refuse_duplicate_columns(names: list[str], where: str) -> None:
    seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if name in seen:
            raise DataError(f"{where} has two columns named {name!r} (columns {seen[name]} and "
                            f"{position}): which one is meant cannot be told.",
                            hint="rename or remove one of them.")
        seen[name] = position


def _csv_header(path: Path) -> list[str]:
    import csv

    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        return next(csv.reader(f), [])


def _read(path: Path, where: str, kind: str):
    import pyarrow as pa

    try:
        if kind == "arrow":  # the table's buffers keep the mapping open
            return pa.ipc.open_file(pa.memory_map(str(path))).read_all()
        if kind == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).read()
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{where} is not a readable {kind} file: {exc}.") from exc
    from mlbuild.data.schema import read_csv

    _refuse_duplicate_columns(_csv_header(path), where)  # pandas would rename one "name.1"
    frame = read_csv(path, where)
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataError(f"{where} has a column of mixed types Arrow cannot hold: {exc}.",
                        hint="make each column hold one kind of value.") from exc


def write_table(table, path: str | os.PathLike) -> None:
    """Write ``table`` (a pyarrow Table or a pandas DataFrame) as an Arrow IPC file whose
    bytes depend on its content alone."""
    import pyarrow as pa

    if not isinstance(table, pa.Table):
        table = pa.Table.from_pandas(table, preserve_index=False)
    table = table.replace_schema_metadata(None).combine_chunks()
    _write(table, path)


def write_rows(path: str | os.PathLike, rows: Sequence[int], origin: StoredObject,
               num_rows: int) -> None:
    """Write a row view: the rows ``rows`` (0-based, in this order) of the stored table
    ``origin``, which has ``num_rows`` rows (checked when the view is opened)."""
    import numpy as np
    import pyarrow as pa

    rows = np.asarray(rows, dtype=np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= num_rows):
        raise ValueError(f"row numbers must lie in [0, {num_rows}); got {rows.min()}…{rows.max()}")
    meta = {"key": origin.key, "sha256": origin.sha256, "num_rows": int(num_rows)}
    table = pa.table({"row": rows}).replace_schema_metadata({ROWS_OF: json.dumps(meta)})
    _write(table, path)


def _write(table, path) -> None:
    import pyarrow as pa

    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=max(table.num_rows, 1))


def open_table(path: str | os.PathLike, resolve: Resolver | None = None,
               where: str | None = None) -> TableView:
    """A table file or a row view, as a :class:`TableView`.

    ``resolve`` finds a view's stored table on local disk; by default the verified cache
    of the configured store.
    """
    table = read_table(path, where)
    meta = (table.schema.metadata or {}).get(ROWS_OF)
    if meta is None:
        return TableView(table)
    origin = json.loads(meta)
    stored = StoredObject(origin["key"], origin["sha256"])
    base = read_table((resolve or _cached)(stored), f"{stored.key} (selected by {path})")
    if base.num_rows != origin["num_rows"]:
        raise DataError(f"{path} selects rows of {stored.key}, which has {base.num_rows} rows, "
                        f"not the {origin['num_rows']} it was made from.")
    return TableView(base, table.column("row").to_numpy())


def _cached(stored: StoredObject) -> Path:
    from mlbuild.settings import cache_dir, store_uri
    from mlbuild.store import LocalCache, open_store

    return LocalCache(cache_dir()).fetch(open_store(store_uri()), stored.key, stored.sha256)


def read_frame(path: str | os.PathLike, where: str | None = None):
    """A table file or a row view as a pandas DataFrame."""
    return open_table(path, where=where).to_pandas()


class TableView:
    """Some rows (all, or ``rows`` in that order) of an Arrow table, read lazily."""

    def __init__(self, table, rows=None):
        self.table = table
        self.rows = rows

    @property
    def num_rows(self) -> int:
        return self.table.num_rows if self.rows is None else len(self.rows)

    @property
    def column_names(self) -> list[str]:
        return list(self.table.column_names)

    def __len__(self) -> int:
        return self.num_rows

    def _missing(self, names: Sequence[str]) -> None:
        missing = [n for n in names if n not in self.table.column_names]
        if missing:
            raise DataError(f"The table has no column(s) {', '.join(map(repr, missing))} "
                            f"(it has {', '.join(self.column_names[:10])}…).")

    def column(self, name: str):
        """One column as a numpy array (nulls in a number column become NaN)."""
        self._missing([name])
        values = self.table.column(name).to_numpy()
        return values if self.rows is None else values[self.rows]

    def matrix(self, columns: Sequence[str]):
        """The columns as one float64 matrix in column-major order, filled column by
        column straight from the mapped file: what LightGBM and scikit-learn take
        without another copy, and no pandas frame in between."""
        import numpy as np

        self._missing(columns)
        out = np.empty((self.num_rows, len(columns)), dtype=np.float64, order="F")
        for j, name in enumerate(columns):
            out[:, j] = self.column(name)
        return out

    def take(self, positions) -> TableView:
        """The view's rows at ``positions`` (0-based within the view)."""
        import numpy as np

        positions = np.asarray(positions, dtype=np.int64)
        return TableView(self.table, positions if self.rows is None else self.rows[positions])

    def to_arrow(self):
        return self.table if self.rows is None else self.table.take(self.rows)

    def to_pandas(self):
        return self.to_arrow().to_pandas()
