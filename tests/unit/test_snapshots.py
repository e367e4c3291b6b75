"""Data snapshots in local folders: the pattern, the selection, the identity, the fetch."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest
from pydantic import ValidationError

from mlbuild.data import snapshots, sources
from mlbuild.data.snapshots import fetch_snapshot, is_snapshot, parse, resolve
from mlbuild.errors import ConfigError, DataError, IntegrityError, MissingError


def write_part(root: Path, snapshot: str, name: str, text: str, mtime: float | None = None):
    path = root / snapshot / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


@pytest.fixture
def series(env):
    """Two snapshots of two parts each, the second named later but written earlier."""
    root = env.root / "digits"
    write_part(root, "2026-12-01", "part-0.csv", "x,label\n1,0\n2,1\n", mtime=1_700_000_000)
    write_part(root, "2026-12-01", "part-1.csv", "x,label\n3,0\n", mtime=1_700_000_100)
    write_part(root, "2026-12-02", "part-0.csv", "x,label\n4,1\n", mtime=1_600_000_000)
    write_part(root, "2026-12-02", "part-1.csv", "x,label\n5,0\n6,1\n", mtime=1_600_000_000)
    write_part(root, "2026-12-02", "_SUCCESS", "", mtime=1_600_000_000)  # not a part
    return root


def source(root: Path, parts: str = "part-*.csv") -> str:
    return f"file://{root}/*/{parts}"


# ------------------------------------------------------------------------ the pattern


def test_an_s3_pattern_splits_into_bucket_level_and_parts():
    pattern = parse("s3://bucket/data/digits/*/part-*.csv")
    assert (pattern.root, pattern.base, pattern.level, pattern.parts) == (
        "s3://bucket", "data/digits/", "*", ("part-*.csv",))
    assert parse("s3://bucket/2026-*/x/*.parquet").parts == ("x", "*.parquet")


def test_a_local_pattern_is_relative_to_the_folder_above_the_level():
    assert parse("file:///data/digits/*/part-*.csv").root == "/data/digits"
    assert parse("file://data/*/p.csv").root == "data"
    assert parse("file://*/p.csv").root == "."
    assert parse("file:///*/p.csv").root == "/"


def test_only_s3_and_file_uris_with_a_star_are_snapshots():
    assert is_snapshot("s3://b/d/*/p.csv") and is_snapshot("file://d/*/p.csv")
    assert not is_snapshot("s3://b/d/p.csv")
    assert not is_snapshot("https://host/d/*/p.csv")
    assert not is_snapshot("builtin:digits")


@pytest.mark.parametrize(("bad", "message"), [
    ("s3://bucket/digits/*", "no part pattern after its snapshot level '\\*'"),
    ("s3://buck*/digits/x.csv", "must name one bucket"),
    ("file://data//*/p.csv", "empty path segment"),
    ("file://data/*/", "empty path segment"),
    ("s3://bucket/digits/p.csv", "not a snapshot pattern"),
])
def test_a_malformed_pattern_is_a_config_error_naming_it(bad, message):
    with pytest.raises(ConfigError, match=message) as caught:
        parse(bad)
    assert bad in str(caught.value) and caught.value.hint


# ---------------------------------------------------------------------- the selection


def test_latest_is_the_greatest_name_and_its_parts_in_key_order(series):
    snapshot = resolve(source(series))
    assert snapshot.name == "2026-12-02"
    assert [p.key for p in snapshot.parts] == ["2026-12-02/part-0.csv", "2026-12-02/part-1.csv"]
    assert snapshot.parts[0].uri == f"file://{series}/2026-12-02/part-0.csv"
    assert all(len(p.sha256) == 64 and p.etag is None for p in snapshot.parts)


def test_last_modified_is_the_snapshot_whose_newest_part_was_written_last(series):
    assert resolve(source(series), "last_modified").name == "2026-12-01"
    write_part(series, "2026-12-02", "part-1.csv", "x,label\n5,0\n", mtime=1_750_000_000)
    assert resolve(source(series), "last_modified").name == "2026-12-02"


def test_a_relative_file_uri_resolves_from_the_working_folder(series, monkeypatch):
    monkeypatch.chdir(series.parent)
    snapshot = resolve("file://digits/*/part-*.csv")
    assert snapshot.parts[0].uri == "file://digits/2026-12-02/part-0.csv"
    assert snapshot.identity == resolve(source(series)).identity  # keys are relative


def test_an_unknown_selection_is_a_config_error(series):
    with pytest.raises(ConfigError, match="'newest'.*latest, last_modified"):
        resolve(source(series), "newest")


def test_an_empty_folder_and_a_snapshot_without_parts_are_named(env, series):
    (env.root / "empty").mkdir()
    with pytest.raises(MissingError, match="listed file://.*empty and found nothing there"):
        resolve(source(env.root / "empty"))
    with pytest.raises(MissingError, match="'2026-12-02'.*no part matching '\\*.parquet'.*"
                                           "2026-12-02/_SUCCESS"):
        resolve(source(series, "*.parquet"))
    with pytest.raises(MissingError, match="does not exist"):
        resolve(source(env.root / "nowhere"))


# ------------------------------------------------------------------------ the identity


def test_the_identity_changes_with_a_parts_bytes_and_not_with_its_time(series):
    before = resolve(source(series))
    os.utime(series / "2026-12-02" / "part-0.csv", (1_760_000_000, 1_760_000_000))
    assert resolve(source(series)).identity == before.identity  # nothing new
    write_part(series, "2026-12-02", "part-0.csv", "x,label\n4,0\n")
    after = resolve(source(series))
    assert after.identity != before.identity and after.name == before.name
    assert sources.version(source(series)) == f"2026-12-02@{after.identity}"


# ------------------------------------------------------------------------ the fetch


def test_fetch_concatenates_the_parts_in_order(series, env):
    dest = env.root / "raw.arrow"
    manifest = fetch_snapshot(resolve(source(series)), dest)
    table = pa.ipc.open_file(pa.memory_map(str(dest))).read_all()
    assert table.column("x").to_pylist() == [4, 5, 6]
    assert table.schema.field("x").type == pa.int64()
    assert manifest["name"] == "2026-12-02" and len(manifest["parts"]) == 2
    assert manifest["identity"] == resolve(source(series)).identity


def test_a_part_changed_after_resolve_is_refused(series, env):
    snapshot = resolve(source(series))
    write_part(series, "2026-12-02", "part-1.csv", "x,label\n5,0\n7,1\n")
    with pytest.raises(IntegrityError, match="'2026-12-02'.*changed during the run.*part-1.csv"):
        fetch_snapshot(snapshot, env.root / "raw.arrow")
    assert not (env.root / "raw.arrow").exists()


def test_parts_with_other_columns_or_types_are_named(series, env):
    write_part(series, "2026-12-02", "part-1.csv", "x,y\n5,0\n")
    with pytest.raises(DataError, match="part-1.csv.*other columns.*lacks \\['label'\\] and has "
                                        "\\['y'\\]"):
        fetch_snapshot(resolve(source(series)), env.root / "raw.arrow")
    write_part(series, "2026-12-02", "part-1.csv", "x,label\n5.5,0\n")
    with pytest.raises(DataError, match="part-1.csv.*column 'x' of type double.*has int64"):
        fetch_snapshot(resolve(source(series)), env.root / "raw.arrow")


def test_fetch_table_reads_the_fingerprinted_snapshot_not_a_newer_one(series, env):
    fingerprinted = sources.version(source(series))
    write_part(series, "2026-12-03", "part-0.csv", "x,label\n9,9\n")  # arrives meanwhile
    dest = env.root / "raw.arrow"
    assert sources.fetch_table(source(series), dest, version=fingerprinted) == fingerprinted
    assert pa.ipc.open_file(str(dest)).read_all().column("x").to_pylist() == [4, 5, 6]
    write_part(series, "2026-12-02", "part-0.csv", "x,label\n4,0\n")  # it changed
    with pytest.raises(IntegrityError, match="changed during the run.*identity was"):
        sources.fetch_table(source(series), dest, version=fingerprinted)


def test_a_pinned_sha256_is_refused_for_a_snapshot(series, env):
    with pytest.raises(ConfigError, match="cannot match it"):
        sources.fetch_table(source(series), env.root / "raw.arrow", "0" * 64)
    with pytest.raises(ConfigError, match="not one file"):
        sources.fetch(source(series), env.root / "raw.csv")


def test_the_latest_snapshot_is_found_without_reading_a_settled_part_again(series, monkeypatch):
    monkeypatch.setattr("mlbuild.data.file_digests.SETTLE", 0.0)
    first = snapshots.latest(source(series))
    reads = []
    monkeypatch.setattr("mlbuild.data.file_digests.file_digest",
                        lambda path: reads.append(path))  # would fail if called
    assert snapshots.latest(source(series)) == first and reads == []


# ------------------------------------------------------------------ the reference project


def test_the_project_config_takes_only_the_two_selections_and_no_pin_on_snapshots():
    from tasks.config import DataConfig

    assert DataConfig(source="s3://b/d/*/p.csv", snapshot="last_modified").snapshot == \
        "last_modified"
    with pytest.raises(ValidationError, match="snapshot"):
        DataConfig(snapshot="newest")
    with pytest.raises(ValidationError, match="cannot pin a snapshot source"):
        DataConfig(source="s3://b/d/*/p.csv", sha256="0" * 64)
