"""Tables between tasks: Arrow IPC files whose bytes depend on the table alone, and row
views that resolve through the store and cache, also across tasks run by Luigi."""

from __future__ import annotations

import hashlib
from typing import ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlbuild import BuildTask, DataError, StoredObject
from mlbuild.data.tables import ROWS_OF, open_table, read_frame, read_table, write_rows, write_table

from ._helpers import build

FRAME = pd.DataFrame({"count": np.arange(6, dtype=np.int64), "x": np.linspace(0.1, 0.6, 6),
                      "name": list("abcdef"), "label": [0, 1, 2, 0, 1, 2]})


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_csv_parquet_and_arrow_sources_give_the_same_typed_table(tmp_path):
    FRAME.to_csv(tmp_path / "data.csv", index=False)
    FRAME.to_parquet(tmp_path / "data.parquet", index=False)
    write_table(FRAME, tmp_path / "data.arrow")
    tables = [read_table(tmp_path / f"data.{kind}") for kind in ("csv", "parquet", "arrow")]
    for table in tables:
        assert table.schema.field("count").type == pa.int64()  # an integer stays one
        assert table.schema.field("x").type == pa.float64()
        assert table.drop_columns([]).to_pandas().equals(FRAME)


def test_the_bytes_of_a_written_table_depend_on_its_content_alone(tmp_path):
    FRAME.to_csv(tmp_path / "data.csv", index=False)
    write_table(FRAME, tmp_path / "from_frame.arrow")
    write_table(read_table(tmp_path / "data.csv"), tmp_path / "from_csv.arrow")
    chunked = pa.concat_tables([pa.Table.from_pandas(FRAME[:2], preserve_index=False),
                                pa.Table.from_pandas(FRAME[2:], preserve_index=False)])
    write_table(chunked, tmp_path / "from_chunks.arrow")
    digests = {digest(tmp_path / n) for n in ("from_frame.arrow", "from_csv.arrow",
                                              "from_chunks.arrow")}
    assert len(digests) == 1
    table = read_table(tmp_path / "from_frame.arrow")
    assert table.schema.metadata is None  # no pandas metadata
    assert len(pa.ipc.open_file(str(tmp_path / "from_chunks.arrow")).schema) == 4


def test_a_row_view_selects_rows_of_its_origin_in_order(tmp_path):
    write_table(FRAME, tmp_path / "raw.arrow")
    origin = StoredObject("FetchData/fp/raw.arrow", digest(tmp_path / "raw.arrow"))
    write_rows(tmp_path / "part.rows.arrow", [4, 0, 2], origin, len(FRAME))
    asked = []

    def resolve(stored):
        asked.append(stored)
        return tmp_path / "raw.arrow"

    view = open_table(tmp_path / "part.rows.arrow", resolve)
    assert asked == [origin]
    assert len(view) == 3
    assert view.column("count").tolist() == [4, 0, 2]
    assert view.column("name").tolist() == ["e", "a", "c"]
    assert view.to_pandas()["x"].tolist() == FRAME["x"].iloc[[4, 0, 2]].tolist()
    assert view.take([2, 0]).column("count").tolist() == [2, 4]
    assert (tmp_path / "part.rows.arrow").stat().st_size < 2_000  # row numbers only


def test_the_matrix_is_column_major_float64_with_nan_for_missing_values(tmp_path):
    frame = pd.DataFrame({"a": pd.array([1, None, 3], dtype="Int64"), "b": [0.5, 1.5, np.nan]})
    write_table(frame, tmp_path / "t.arrow")
    matrix = open_table(tmp_path / "t.arrow").matrix(["b", "a"])
    assert matrix.dtype == np.float64 and matrix.flags["F_CONTIGUOUS"]
    np.testing.assert_array_equal(matrix, [[0.5, 1.0], [1.5, np.nan], [np.nan, 3.0]])


def test_a_view_of_a_table_with_another_row_count_is_refused(tmp_path):
    write_table(FRAME, tmp_path / "raw.arrow")
    write_rows(tmp_path / "v.arrow", [0, 1], StoredObject("k", "s"), 100)
    with pytest.raises(DataError, match="has 6 rows, not the 100"):
        open_table(tmp_path / "v.arrow", lambda stored: tmp_path / "raw.arrow")


def test_row_numbers_outside_the_table_are_refused_when_written(tmp_path):
    with pytest.raises(ValueError, match=r"\[0, 6\)"):
        write_rows(tmp_path / "v.arrow", [0, 6], StoredObject("k", "s"), 6)


def test_a_missing_column_is_named(tmp_path):
    write_table(FRAME, tmp_path / "t.arrow")
    with pytest.raises(DataError, match="no column.*'nope'"):
        open_table(tmp_path / "t.arrow").matrix(["x", "nope"])


def test_a_truncated_arrow_file_is_a_data_error(tmp_path):
    write_table(FRAME, tmp_path / "t.arrow")
    data = (tmp_path / "t.arrow").read_bytes()
    (tmp_path / "bad.arrow").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="not a readable arrow file"):
        read_table(tmp_path / "bad.arrow", "the raw data")


def test_an_empty_csv_is_a_data_error(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="is empty"):
        read_frame(tmp_path / "empty.csv")


# ------------------------------------------- views across tasks, through store and cache

class UTable(BuildTask):
    outputs: ClassVar = {"raw": "raw.arrow"}

    def build(self, inputs, outputs):
        write_table(FRAME, outputs["raw"])


class USplit(BuildTask):
    outputs: ClassVar = {"odd": "odd.rows.arrow"}

    def requires(self):
        return {"table": UTable()}

    def build(self, inputs, outputs):
        raw = inputs["table"]["raw"]
        write_rows(outputs["odd"], [1, 3, 5], self.origin(raw), len(FRAME))


class UReadView(BuildTask):
    outputs: ClassVar = {"names": "names.txt"}

    def requires(self):
        return {"split": USplit()}

    def build(self, inputs, outputs):
        outputs["names"].write_text(",".join(read_frame(inputs["split"]["odd"])["name"]))


class UBadOrigin(BuildTask):
    outputs: ClassVar = {"x": "x.txt"}

    def build(self, inputs, outputs):
        self.origin(outputs["x"])


def test_a_view_written_by_one_task_is_read_by_the_next_through_the_cache(env):
    assert build(UReadView())
    assert UReadView().fetch_outputs()["names"].read_text() == "b,d,f"
    view = pa.ipc.open_file(str(USplit().fetch_outputs()["odd"]))
    table_key = UTable().stored_outputs()["raw"]
    assert table_key.key == f"{UTable().prefix}/raw.arrow"
    assert ROWS_OF in view.schema.metadata and table_key.sha256.encode() in view.schema.metadata[ROWS_OF]


def test_a_view_resolves_from_the_store_when_the_cache_is_empty(env, tmp_path):
    assert build(USplit())
    view = USplit().fetch_outputs()["odd"].read_bytes()
    env.monkeypatch.setenv("MLBUILD_CACHE", str(tmp_path / "another-cache"))  # another worker
    (tmp_path / "view.arrow").write_bytes(view)
    assert read_frame(tmp_path / "view.arrow")["count"].tolist() == [1, 3, 5]


def test_origin_of_a_file_that_is_no_input_is_a_build_error(env):
    assert not build(UBadOrigin()).scheduling_succeeded
    assert "not an input file of this run" in env.failures()[-1].message


def test_two_columns_of_one_name_are_refused_in_every_format(tmp_path):
    (tmp_path / "dup.csv").write_text("a,b,a\n1,2,3\n")
    with pytest.raises(DataError, match=r"two columns named 'a' \(columns 1 and 3\)"):
        read_table(tmp_path / "dup.csv")
    table = pa.table([pa.array([1]), pa.array([2])], names=["x", "x"])
    pq.write_table(table, tmp_path / "dup.parquet")
    with pytest.raises(DataError, match="two columns named 'x'"):
        read_table(tmp_path / "dup.parquet")
