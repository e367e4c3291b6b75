"""The S3 store against a real S3 API server (moto over HTTP): the store contract, plus
what only S3 has — batched existence, multipart transfers, unfinished uploads."""

from __future__ import annotations

import hashlib
import os
import re
from datetime import timedelta

import pytest

from mlbuild.errors import IntegrityError
from mlbuild.store.s3 import S3Options, S3Store
from tests.conftest import s3_client
from tests.unit.test_store import StoreContract

pytestmark = pytest.mark.integration


def _store(s3_env, bucket, prefix="team/results", **options) -> S3Store:
    return S3Store(f"s3://{bucket}/{prefix}",
                   S3Options(endpoint_url=s3_env["AWS_ENDPOINT_URL"], **options))


class TestS3Store(StoreContract):
    @pytest.fixture
    def store(self, s3_env, bucket):
        return _store(s3_env, bucket)


def test_objects_live_under_the_prefix(s3_env, bucket):
    _store(s3_env, bucket).put_bytes(b"x", "Fam/fp/out.txt")
    listed = s3_client(s3_env["AWS_ENDPOINT_URL"]).list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in listed["Contents"]] == ["team/results/Fam/fp/out.txt"]


def test_existence_of_many_keys_is_answered_by_one_listing(s3_env, bucket):
    writer = _store(s3_env, bucket)
    keys = [f"Leaf/{i:04d}/manifest.json" for i in range(300)]
    for key in keys:
        writer.put_bytes(b"{}", key)
    reader = _store(s3_env, bucket)  # a new process: nothing known yet
    assert all(reader.exists(key) for key in keys)
    assert reader.requests == 1
    assert not reader.exists("Leaf/missing/manifest.json")  # a miss is asked directly
    assert reader.requests == 2


def test_a_download_nobody_watches_sends_no_request_to_size_a_progress_bar(s3_env, bucket,
                                                                         tmp_path):
    writer = _store(s3_env, bucket)
    writer.put_bytes(b"x" * 1000, "Fam/fp/out.bin")
    reader = _store(s3_env, bucket)
    reader.get_file("Fam/fp/out.bin", tmp_path / "out.bin")  # stderr is not a terminal here
    # boto3's own HEAD (the transfer's size) and the GET; no HEAD of mlbuild's.
    assert reader.requests == 2


def test_a_key_written_by_another_worker_after_the_listing_is_found(s3_env, bucket):
    mine, theirs = _store(s3_env, bucket), _store(s3_env, bucket)
    assert not mine.exists("Fam/a/manifest.json")  # lists Fam/
    theirs.put_bytes(b"{}", "Fam/a/manifest.json")
    assert mine.exists("Fam/a/manifest.json")


def test_multipart_transfers_are_hashed_while_they_stream(s3_env, bucket, tmp_path):
    store = _store(s3_env, bucket, part_size_mb=5, upload_part_size_mb=5,
                   max_concurrency=4)
    data = os.urandom(17 * 1024 * 1024 + 123)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    assert store.put_file(source, "Big/fp/big.bin").sha256 == digest
    head = s3_client(s3_env["AWS_ENDPOINT_URL"]).head_object(Bucket=bucket,
                                                            Key="team/results/Big/fp/big.bin")
    assert head["ETag"].strip('"').endswith("-4")  # it really went up in 4 parts
    info = store.get_file("Big/fp/big.bin", tmp_path / "back.bin", digest)
    assert info.sha256 == digest and (tmp_path / "back.bin").read_bytes() == data


def test_a_tampered_object_fails_verification_naming_it_and_both_digests(s3_env, bucket, tmp_path):
    store = _store(s3_env, bucket)
    recorded = store.put_bytes(b"the real model", "models/m/model.txt").sha256
    s3_client(s3_env["AWS_ENDPOINT_URL"]).put_object(
        Bucket=bucket, Key="team/results/models/m/model.txt", Body=b"the real mode")
    actual = hashlib.sha256(b"the real mode").hexdigest()
    for read in (lambda: store.get_bytes("models/m/model.txt", recorded),
                 lambda: store.get_file("models/m/model.txt", tmp_path / "m", recorded)):
        with pytest.raises(IntegrityError) as caught:
            read()
        message = str(caught.value)
        assert f"s3://{bucket}/team/results/models/m/model.txt" in message
        assert recorded in message and actual in message
    assert not (tmp_path / "m").exists()


def test_unfinished_multipart_uploads_are_found_and_discarded(s3_env, bucket):
    client = s3_client(s3_env["AWS_ENDPOINT_URL"])
    client.create_multipart_upload(Bucket=bucket, Key="team/results/Big/fp/big.bin")
    client.create_multipart_upload(Bucket=bucket, Key="elsewhere/not-ours.bin")
    store = _store(s3_env, bucket)
    # (moto dates every upload in 2010, so only the listing is checked here, not the age.)
    stale = store.stale_writes(timedelta(0))
    assert [s.key for s in stale] == ["Big/fp/big.bin"]
    store.discard(stale[0])
    uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [u["Key"] for u in uploads] == ["elsewhere/not-ours.bin"]


def test_a_missing_bucket_is_named(s3_env):
    store = _store(s3_env, "no-such-bucket-here")
    with pytest.raises(Exception, match=re.escape("The bucket 'no-such-bucket-here' does not exist")):
        store.exists("Fam/fp/manifest.json")
