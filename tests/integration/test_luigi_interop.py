"""Plain Luigi tasks beside BuildTasks, in real Luigi workers (subprocesses) against a
real S3 API server: plain targets (a local file, an S3 object) feeding a BuildTask, and a
plain task reading a BuildTask's named outputs, on a local store and on an S3 store.

The Luigi task module is written into the test's own folder: these tests do not depend
on the reference project.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from mlbuild.errors import IntegrityError
from tests.conftest import REPO, TEST_AWS, ok, s3_client

pytestmark = pytest.mark.integration

TASKS = '''
import os

import luigi
from luigi.contrib.s3 import S3Client, S3Target

from mlbuild import BuildTask


class RawFile(luigi.ExternalTask):
    def output(self):
        return luigi.LocalTarget(os.environ["RAW_FILE"])


class RawObject(luigi.ExternalTask):
    def output(self):
        # Luigi checks the target with its own client; mlbuild reads the object with its
        # own S3 settings (MLBUILD_S3_ENDPOINT_URL or AWS_ENDPOINT_URL).
        client = S3Client(endpoint_url=os.environ.get("RAW_ENDPOINT") or None)
        return S3Target(os.environ["RAW_OBJECT"], client=client)


class Combine(BuildTask):
    outputs = {"both": "both.txt", "sizes": "sizes.json"}

    def requires(self):
        return {"file": RawFile(), "object": RawObject()}

    def build(self, inputs, outputs):
        file, obj = inputs["file"]["output"], inputs["object"]["output"]
        outputs["both"].write_text(file.read_text() + obj.read_text())
        outputs["sizes"].write_text(
            '{"file": %d, "object": %d}' % (file.stat().st_size, obj.stat().st_size))


class Report(luigi.Task):
    """A plain task downstream: reads the named outputs through standard Luigi targets."""

    def requires(self):
        return Combine()

    def output(self):
        return luigi.LocalTarget("report.txt")

    def run(self):
        with self.input()["both"].open("r") as both, self.input()["sizes"].open("r") as sizes:
            text = both.read().upper() + sizes.read()
        with self.output().open("w") as out:
            out.write(text)
'''

LUIGI_CFG = """\
[core]
autoload_range = false

[retcode]
unhandled_exception = 20
task_failed = 21
missing_data = 22
scheduling_error = 23
not_run = 24
already_running = 25
"""


class Pipeline:
    """The task module above in a folder of its own, run by real Luigi workers."""

    def __init__(self, root: Path, env: dict[str, str]):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / "interop_tasks.py").write_text(TASKS)
        (root / "luigi.cfg").write_text(LUIGI_CFG)
        self.raw_file = root / "data" / "raw.txt"
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("MLBUILD_", "LUIGI_", "AWS_"))}
        self.env.update(env, RAW_FILE=str(self.raw_file),
                        PYTHONPATH=os.pathsep.join((str(root), str(REPO))))
        self.store = root / ".mlbuild" / "store"

    def luigi(self, task: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "luigi", "--module", "interop_tasks", task, "--local-scheduler"],
            check=False, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=300)

    def manifests(self) -> dict[str, str]:
        return {str(p.relative_to(self.store)): json.loads(p.read_text())["finished"]
                for p in self.store.rglob("manifest.json")}


def ran(result: subprocess.CompletedProcess) -> bool:
    return "Did not run any tasks" not in ok(result).stderr


@pytest.fixture
def raw_bucket(s3_env) -> str:
    """A bucket of raw data, apart from any store."""
    name = f"raw-{uuid.uuid4().hex[:12]}"
    s3_client(s3_env["AWS_ENDPOINT_URL"]).create_bucket(Bucket=name)
    return name


def put(endpoint: str, bucket: str, key: str, body: bytes) -> None:
    s3_client(endpoint).put_object(Bucket=bucket, Key=key, Body=body)


# ------------------------------------------------------------------ upstream


def test_a_local_file_and_an_s3_object_feed_a_build_task(s3_env, raw_bucket, tmp_path):
    endpoint = s3_env["AWS_ENDPOINT_URL"]
    pipeline = Pipeline(tmp_path / "p", {**TEST_AWS, "AWS_ENDPOINT_URL": endpoint,
                                         "RAW_OBJECT": f"s3://{raw_bucket}/in/object.txt"})
    pipeline.raw_file.parent.mkdir()
    pipeline.raw_file.write_text("file one\n")
    put(endpoint, raw_bucket, "in/object.txt", b"object one\n")

    assert ran(pipeline.luigi("Combine"))
    (key,) = pipeline.manifests()
    manifest = json.loads((pipeline.store / key).read_text())
    upstream = manifest["inputs"]["upstream"]
    assert upstream["file"]["output"].startswith("sha256:")
    assert upstream["object"]["output"].startswith("etag:")
    both = pipeline.store / key.replace("manifest.json", "both.txt")
    assert both.read_text() == "file one\nobject one\n"

    before = pipeline.manifests()
    assert not ran(pipeline.luigi("Combine"))  # a no-op
    os.utime(pipeline.raw_file)  # touched, same bytes
    assert not ran(pipeline.luigi("Combine"))
    assert pipeline.manifests() == before

    put(endpoint, raw_bucket, "in/object.txt", b"object two\n")
    assert ran(pipeline.luigi("Combine"))
    after_object = pipeline.manifests()
    assert len(after_object) == 2
    (new,) = set(after_object) - set(before)
    assert (pipeline.store / new.replace("manifest.json", "both.txt")).read_text() == (
        "file one\nobject two\n")

    pipeline.raw_file.write_text("file two\n")
    assert ran(pipeline.luigi("Combine"))
    assert len(pipeline.manifests()) == 3
    assert not ran(pipeline.luigi("Combine"))


def test_missing_external_data_is_reported_and_nothing_is_built(s3_env, raw_bucket, tmp_path):
    endpoint = s3_env["AWS_ENDPOINT_URL"]
    pipeline = Pipeline(tmp_path / "p", {**TEST_AWS, "AWS_ENDPOINT_URL": endpoint,
                                         "RAW_OBJECT": f"s3://{raw_bucket}/in/absent.txt"})
    pipeline.raw_file.parent.mkdir()
    pipeline.raw_file.write_text("file one\n")
    result = pipeline.luigi("Combine")
    assert result.returncode == 22, result.stderr  # Luigi's missing_data
    assert "RawObject" in result.stderr and "missing external dependenc" in result.stderr
    assert pipeline.manifests() == {}


# ------------------------------------------------------------------ downstream


@pytest.mark.parametrize("store", ["local", "s3"])
def test_a_plain_task_reads_named_outputs_through_luigi_targets(s3_env, raw_bucket, bucket,
                                                               tmp_path, store):
    endpoint = s3_env["AWS_ENDPOINT_URL"]
    env = {**TEST_AWS, "RAW_OBJECT": f"s3://{raw_bucket}/in/object.txt"}
    if store == "s3":
        # Only mlbuild's own setting names the endpoint (and RawObject's client): the
        # S3Target that Combine.output() hands to Report must carry it.
        env.update(MLBUILD_STORE=f"s3://{bucket}/team/ml", MLBUILD_S3_ENDPOINT_URL=endpoint,
                   RAW_ENDPOINT=endpoint)
    else:
        env.update(AWS_ENDPOINT_URL=endpoint)
    pipeline = Pipeline(tmp_path / "p", env)
    pipeline.raw_file.parent.mkdir()
    pipeline.raw_file.write_text("file\n")
    put(endpoint, raw_bucket, "in/object.txt", b"object\n")

    ok(pipeline.luigi("Report"))
    assert (pipeline.root / "report.txt").read_text() == 'FILE\nOBJECT\n{"file": 5, "object": 7}'
    if store == "s3":
        assert not pipeline.store.exists()
        keys = [o["Key"] for o in s3_client(endpoint).list_objects_v2(
            Bucket=bucket, Prefix="team/ml/Combine/").get("Contents", ())]
        assert sorted(k.rsplit("/", 1)[1] for k in keys) == [
            "both.txt", "manifest.json", "sizes.json"]
    else:
        assert len(pipeline.manifests()) == 1
    (pipeline.root / "report.txt").unlink()
    result = ok(pipeline.luigi("Report"))  # Combine is complete: only Report runs again
    assert "1 ran successfully" in result.stderr and "Report()" in result.stderr


# ------------------------------------------------------------------ in process


def test_an_object_changed_after_fingerprinting_is_refused_and_a_known_one_not_fetched(
        s3_env, raw_bucket, tmp_path, monkeypatch):
    import luigi
    from luigi.contrib.s3 import S3Target

    from mlbuild.core import interop
    from mlbuild.store import LocalCache, open_store

    monkeypatch.setenv("MLBUILD_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(interop, "_MEMOS", {})
    endpoint = s3_env["AWS_ENDPOINT_URL"]
    put(endpoint, raw_bucket, "obj.txt", b"first\n")

    class RawObj(luigi.ExternalTask):
        def output(self):
            return S3Target(f"s3://{raw_bucket}/obj.txt")

    task, cache = RawObj(), LocalCache(tmp_path / "cache")
    version = interop.identity(task)
    assert interop.fetch(task, version, cache)["output"].read_bytes() == b"first\n"
    store = open_store(f"s3://{raw_bucket}")
    requests = store.requests
    assert interop.fetch(task, version, cache)["output"].read_bytes() == b"first\n"
    assert store.requests == requests  # the same version: from the cache, no request

    put(endpoint, raw_bucket, "obj.txt", b"second\n")
    # The fingerprinted version's bytes are still in this cache, so they would be handed
    # out (rightly); on another machine, with nothing cached, S3 must refuse them.
    monkeypatch.setenv("MLBUILD_CACHE", str(tmp_path / "other-cache"))
    monkeypatch.setattr(interop, "_MEMOS", {})
    cache = LocalCache(tmp_path / "other-cache")
    assert interop.fetch(task, version, LocalCache(tmp_path / "cache"))["output"].read_bytes() == (
        b"first\n")
    with pytest.raises(IntegrityError, match=rf"s3://{raw_bucket}/obj.txt changed after its "
                                             r"version .* was fingerprinted.*Hint:"):
        interop.fetch(task, version, cache)
    again = interop.identity(task)
    assert again != version
    assert interop.fetch(task, again, cache)["output"].read_bytes() == b"second\n"
    leftovers = [p.name for p in (tmp_path / "other-cache" / "tmp").iterdir()]
    assert leftovers == []
