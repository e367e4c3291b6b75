"""Data snapshots on a real S3 API server (moto over HTTP): the selection, version ids,
a part that changes under a run, the cost of asking, and the reference pipeline on them."""

from __future__ import annotations

import io
import json
import time

import pyarrow as pa
import pytest

from mlbuild.data import snapshots, sources
from mlbuild.errors import IntegrityError, MissingError
from mlbuild.store import open_store
from tests.conftest import ok, s3_client

pytestmark = pytest.mark.integration

PATTERN = "digits/*/part-*.csv"


@pytest.fixture
def s3(s3_env):
    return s3_client(s3_env["AWS_ENDPOINT_URL"])


def put(s3, bucket: str, key: str, text: str) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=text.encode())


def table(path) -> pa.Table:
    return pa.ipc.open_file(str(path)).read_all()


def test_latest_is_the_greatest_name_and_last_modified_the_newest_part(s3, bucket):
    put(s3, bucket, "digits/2026-12-01/part-0.csv", "x,label\n1,0\n")
    put(s3, bucket, "digits/2026-12-01/part-1.csv", "x,label\n2,1\n")
    put(s3, bucket, "digits/2026-12-02/part-0.csv", "x,label\n3,0\n")
    put(s3, bucket, "digits/2026-12-02/_SUCCESS", "")
    put(s3, bucket, "digits/README", "not in a snapshot")
    source = f"s3://{bucket}/{PATTERN}"
    snapshot = snapshots.resolve(source)
    assert snapshot.name == "2026-12-02"
    assert [p.uri for p in snapshot.parts] == [f"s3://{bucket}/digits/2026-12-02/part-0.csv"]
    assert snapshot.parts[0].etag and snapshot.parts[0].version_id is None  # not versioned
    assert snapshots.resolve(source, "last_modified").name == "2026-12-02"  # a tie: by name

    time.sleep(1.1)  # S3 keeps LastModified to the second
    put(s3, bucket, "digits/2026-12-01/part-1.csv", "x,label\n2,0\n")
    assert snapshots.resolve(source, "last_modified").name == "2026-12-01"
    assert snapshots.resolve(source).name == "2026-12-02"


def test_nothing_there_and_a_snapshot_without_parts_are_named(s3, bucket):
    with pytest.raises(MissingError, match=f"listed s3://{bucket}/digits/ and found nothing"):
        snapshots.resolve(f"s3://{bucket}/{PATTERN}")
    put(s3, bucket, "digits/2026-12-01/data.parquet", "")
    with pytest.raises(MissingError, match="'2026-12-01'.*no part matching 'part-\\*.csv'.*"
                                           "digits/2026-12-01/data.parquet"):
        snapshots.resolve(f"s3://{bucket}/{PATTERN}")


def test_an_object_changed_after_resolve_is_refused(s3, bucket, tmp_path):
    put(s3, bucket, "digits/2026-12-01/part-0.csv", "x,label\n1,0\n")
    snapshot = snapshots.resolve(f"s3://{bucket}/{PATTERN}")
    put(s3, bucket, "digits/2026-12-01/part-0.csv", "x,label\n1,1\n")
    with pytest.raises(IntegrityError, match="'2026-12-01'.*changed during the run.*part-0.csv"):
        snapshots.fetch_snapshot(snapshot, tmp_path / "raw.arrow")
    assert not any(tmp_path.iterdir())  # no table, no download left behind


def test_a_versioned_bucket_pins_each_parts_version(s3, bucket, tmp_path):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    put(s3, bucket, "digits/2026-12-01/part-0.csv", "x,label\n1,0\n")
    put(s3, bucket, "digits/2026-12-01/part-1.csv", "x,label\n2,1\n")
    source = f"s3://{bucket}/{PATTERN}"
    before = snapshots.resolve(source)
    current = {o["Key"]: o["VersionId"] for o in
               s3.list_object_versions(Bucket=bucket)["Versions"] if o["IsLatest"]}
    assert [p.version_id for p in before.parts] == [
        current["digits/2026-12-01/part-0.csv"], current["digits/2026-12-01/part-1.csv"]]
    assert all("version_id" in p.identity for p in before.parts)

    put(s3, bucket, "digits/2026-12-01/part-0.csv", "x,label\n7,0\n")  # overwritten
    after = snapshots.resolve(source)
    assert after.identity != before.identity
    assert after.parts[0].version_id != before.parts[0].version_id

    # The version resolved is the one fetched, even though another is current now.
    manifest = snapshots.fetch_snapshot(before, tmp_path / "raw.arrow")
    assert table(tmp_path / "raw.arrow").column("x").to_pylist() == [1, 2]
    assert manifest["identity"] == before.identity
    assert manifest["parts"][0]["version_id"] == before.parts[0].version_id
    snapshots.fetch_snapshot(after, tmp_path / "raw.arrow")
    assert table(tmp_path / "raw.arrow").column("x").to_pylist() == [7, 2]


def test_asking_for_the_latest_of_30_snapshots_costs_two_requests(s3, bucket):
    for day in range(1, 31):
        for part in range(4):
            put(s3, bucket, f"digits/2026-11-{day:02d}/part-{part}.csv", f"x,label\n{part},0\n")
    store = open_store(f"s3://{bucket}")
    sent = store.requests
    snapshot = snapshots.latest(f"s3://{bucket}/{PATTERN}")
    assert snapshot.name == "2026-11-30" and len(snapshot.parts) == 4
    # One listing of the 120 keys, one ListObjectVersions of the snapshot picked.
    assert store.requests - sent == 2


def test_fetch_table_reads_the_fingerprinted_snapshot_while_a_new_one_arrives(s3, bucket,
                                                                             tmp_path):
    put(s3, bucket, "digits/2026-12-01/part-0.csv", "x,label\n1,0\n")
    source = f"s3://{bucket}/{PATTERN}"
    fingerprinted = sources.version(source)
    put(s3, bucket, "digits/2026-12-02/part-0.csv", "x,label\n2,0\n")
    assert sources.fetch_table(source, tmp_path / "raw.arrow", version=fingerprinted) == \
        fingerprinted
    assert table(tmp_path / "raw.arrow").column("x").to_pylist() == [1]


def put_digits(s3, bucket: str, name: str, edit: bool = False) -> None:
    """scikit-learn's digits as a snapshot of four CSV parts (one pixel changed if ``edit``)."""
    from tasks.fetch import digits_frame

    frame = digits_frame()
    if edit:
        frame.loc[0, "pixel_2_3"] += 1  # new data, the same split (see edited_digits)
    size = -(-len(frame) // 4)
    for part in range(4):
        text = io.StringIO()
        frame.iloc[part * size:(part + 1) * size].to_csv(text, index=False)
        put(s3, bucket, f"digits/{name}/part-{part}.csv", text.getvalue())


def test_the_reference_pipeline_runs_on_snapshots_and_a_new_one_runs_it_again(
        project, s3_env, s3, bucket):
    put_digits(s3, bucket, "2026-12-01")
    project.extra_env.update(s3_env)
    project.one_training_thread()
    project.edit("configs/pipeline.toml", 'source = "builtin:digits"',
                 f'source = "s3://{bucket}/{PATTERN}"\nsnapshot = "latest"')
    ok(project.luigi())
    fetched = json.loads(next(project.store.glob("FetchData/*/manifest.json")).read_text())
    assert fetched["extra"]["snapshot"] == "2026-12-01", fetched

    before = project.manifests()
    again = ok(project.luigi())
    assert "Did not run any tasks" in again.stdout + again.stderr
    assert project.manifests() == before

    put_digits(s3, bucket, "2026-12-02", edit=True)
    ok(project.luigi())
    assert "FetchData" in project.ran_since(before)
    assert len(list(project.store.glob("FetchData/*/manifest.json"))) == 2
