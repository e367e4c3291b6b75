"""The Luigi task module of ``noop_fanin.py``: a fan-in of N leaves, mlbuild and plain Luigi.

Kept apart from the driver, and importing nothing but luigi and mlbuild, so that what a
timed process loads (and what BuildTask parses for its code digest) is the tasks alone.

* mlbuild: ``FanIn(BuildTask)`` requiring N ``Leaf(BuildTask)``, on whatever store
  ``MLBUILD_STORE`` names; ``LeafAll``, a WrapperTask asking about the same N leaves;
* plain Luigi, local: ``PlainAll(WrapperTask)`` requiring N ``PlainLeaf`` with a
  ``LocalTarget`` (``plain/leaf-<i>.txt`` under the working directory);
* plain Luigi, S3: ``S3PlainAll`` over ``S3PlainLeaf`` whose output is an ``S3Target``
  (``s3://bench/plain/leaf-<i>.txt``: a new S3Client, and boto3 resource, per target), and
  ``SharedS3PlainAll``, the same objects with one S3Client for all (its best case).

``python benchmarks/fanin_tasks.py <Task> [params]`` runs Luigi in this process exactly as
``python -m luigi --module fanin_tasks <Task> [params] --local-scheduler`` does (same exit
codes) and prints, as its last line, the HTTP requests every botocore client sent and those
mlbuild's store counted: ``S3-REQUESTS <all clients> <mlbuild store>``.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    # Run under the module name ``fanin_tasks`` (as ``luigi --module`` would), so the task
    # classes are registered once and their code digest does not depend on how the file
    # was started. sys.path[0] is this file's folder.
    import fanin_tasks

    raise SystemExit(fanin_tasks.child(sys.argv[1:]))

from typing import ClassVar

import luigi

from mlbuild import BuildTask

#: Which leaf reads the changed setting: ``NOOP_FANIN_CHANGED_LEAF=<i>`` gives leaf i the
#: variant "b" instead of "a". Both pipelines write the variant into the leaf's file.
CHANGED_LEAF_ENV = "NOOP_FANIN_CHANGED_LEAF"
BUCKET = "bench"
S3_PLAIN_ROOT = f"s3://{BUCKET}/plain"
REQUESTS_LINE = "S3-REQUESTS"


def leaf_variant(i: int) -> str:
    return "b" if os.environ.get(CHANGED_LEAF_ENV) == str(i) else "a"


# ----------------------------------------------------------------------------- mlbuild


class Leaf(BuildTask):
    i = luigi.IntParameter()
    outputs: ClassVar = {"out": "out.txt"}

    def settings(self):
        return {"variant": leaf_variant(self.i)}

    def build(self, inputs, outputs):
        outputs["out"].write_text(f"{self.i} {leaf_variant(self.i)}\n")


class FanIn(BuildTask):
    tasks = luigi.IntParameter(default=1000)
    outputs: ClassVar = {"out": "count.txt"}

    def requires(self):
        return {f"leaf{i}": Leaf(i=i) for i in range(self.tasks)}

    def build(self, inputs, outputs):
        outputs["out"].write_text(f"{len(inputs)}\n")


class LeafAll(luigi.WrapperTask):
    """The same mlbuild leaves, each asked about: N existence checks."""

    tasks = luigi.IntParameter(default=1000)

    def requires(self):
        return [Leaf(i=i) for i in range(self.tasks)]


# ----------------------------------------------------------------------------- plain Luigi


class PlainLeaf(luigi.Task):
    i = luigi.IntParameter()

    def output(self):
        return luigi.LocalTarget(f"plain/leaf-{self.i}.txt")

    def run(self):
        with self.output().open("w") as f:
            f.write(f"{self.i} {leaf_variant(self.i)}\n")


class PlainAll(luigi.WrapperTask):
    tasks = luigi.IntParameter(default=1000)

    def requires(self):
        return [PlainLeaf(i=i) for i in range(self.tasks)]


class S3PlainLeaf(luigi.Task):
    i = luigi.IntParameter()

    def client(self):
        return None  # S3Target's default: a new S3Client (and boto3 resource) per target

    def output(self):
        from luigi.contrib.s3 import S3Target

        return S3Target(f"{S3_PLAIN_ROOT}/leaf-{self.i}.txt", client=self.client())

    def run(self):
        with self.output().open("w") as f:
            f.write(f"{self.i}\n")


class S3PlainAll(luigi.WrapperTask):
    tasks = luigi.IntParameter(default=1000)

    def requires(self):
        return [S3PlainLeaf(i=i) for i in range(self.tasks)]


_SHARED_CLIENT = None


class SharedS3PlainLeaf(S3PlainLeaf):
    """The same objects as S3PlainLeaf, with one S3Client for all targets."""

    def client(self):
        global _SHARED_CLIENT
        if _SHARED_CLIENT is None:
            from luigi.contrib.s3 import S3Client

            _SHARED_CLIENT = S3Client()
        return _SHARED_CLIENT


class SharedS3PlainAll(luigi.WrapperTask):
    tasks = luigi.IntParameter(default=1000)

    def requires(self):
        return [SharedS3PlainLeaf(i=i) for i in range(self.tasks)]


# ----------------------------------------------------------------------------- child


def count_requests() -> list[int]:
    """Count every HTTP request (retries included) of every botocore client made from now on.

    boto3 sessions, resources (Luigi's S3Client) and clients (mlbuild's S3Store) all come
    from ``botocore.session.Session.create_client``; a ``before-send`` handler on each new
    client sees each request just before it is sent.
    """
    import botocore.session

    counter = [0]
    create_client = botocore.session.Session.create_client

    def count(**_):
        counter[0] += 1

    def counting_create_client(self, *args, **kwargs):
        client = create_client(self, *args, **kwargs)
        client.meta.events.register("before-send", count)
        return client

    botocore.session.Session.create_client = counting_create_client
    return counter


def child(argv: list[str]) -> int:
    """``luigi --module fanin_tasks <argv>`` in this process, then the request counts."""
    counter = count_requests()
    from luigi.retcodes import run_with_retcodes

    try:
        run_with_retcodes(["--module", __name__, *argv, "--local-scheduler"])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    from mlbuild.settings import store_uri
    from mlbuild.store import open_store

    store = open_store(store_uri())
    print(f"{REQUESTS_LINE} {counter[0]} {getattr(store, 'requests', 0)}", flush=True)
    return code
