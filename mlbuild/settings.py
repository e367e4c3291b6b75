"""Runtime settings: the ``[mlbuild]`` section of ``luigi.cfg``, overridable by environment.

Precedence, highest first: the environment (``MLBUILD_STORE``, ``MLBUILD_CACHE``,
``MLBUILD_REPORTS``), then ``luigi.cfg`` (or the command line, ``--mlbuild-store``), then
the defaults below. Environment wins so that one CI job or container can point the same
checkout at another store without editing files.
"""

from __future__ import annotations

import os
from pathlib import Path

import luigi


class mlbuild(luigi.Config):
    store = luigi.Parameter(
        default=".mlbuild/store",
        description="Root of the store: a folder, or s3://bucket/prefix.",
    )
    cache = luigi.Parameter(
        default=".mlbuild/cache",
        description="Local content-addressed cache of verified store objects.",
    )
    wheel_cache = luigi.Parameter(
        default="~/.cache/mlbuild/wheels",
        description="Wheels downloaded for image builds, shared by every project of the user.",
    )
    reports = luigi.Parameter(
        default="reports",
        description="Folder for reports that CI archives (accuracy reports, JUnit XML).",
    )
    # S3 stores. Credentials and region come from the standard AWS chain (AWS_PROFILE,
    # AWS_ACCESS_KEY_ID, ~/.aws, instance roles), never from here.
    s3_endpoint_url = luigi.Parameter(
        default="",
        description="S3 endpoint for MinIO or a test server; empty: AWS_ENDPOINT_URL or AWS.",
    )
    s3_max_attempts = luigi.IntParameter(
        default=5, description="Attempts per S3 request, with exponential backoff between."
    )
    s3_connect_timeout = luigi.FloatParameter(default=10.0, description="Seconds to connect.")
    s3_read_timeout = luigi.FloatParameter(default=60.0, description="Seconds to wait for data.")
    s3_part_size_mb = luigi.IntParameter(
        default=64, description="Multipart threshold and part size for downloads, in MiB."
    )
    s3_upload_part_size_mb = luigi.IntParameter(
        default=16, description="Multipart threshold and part size for uploads, in MiB "
        "(each part in flight is held in memory)."
    )
    s3_max_concurrency = luigi.IntParameter(
        default=8, description="Parallel part transfers per object."
    )


def store_uri() -> str:
    return os.environ.get("MLBUILD_STORE") or mlbuild().store


def cache_dir() -> str:
    return os.environ.get("MLBUILD_CACHE") or mlbuild().cache


def wheel_cache_dir() -> Path:
    return Path(os.environ.get("MLBUILD_WHEEL_CACHE") or mlbuild().wheel_cache).expanduser()


def reports_dir() -> str:
    return os.environ.get("MLBUILD_REPORTS") or mlbuild().reports
