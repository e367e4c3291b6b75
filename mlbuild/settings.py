"""Runtime settings: the ``[mlbuild]`` section of ``luigi.cfg``, overridable by environment.

Precedence, highest first: the environment (``MLBUILD_STORE``, ``MLBUILD_CACHE``,
``MLBUILD_REPORTS``), then ``luigi.cfg`` (or the command line, ``--mlbuild-store``), then
the defaults below. Environment wins so that one CI job or container can point the same
checkout at another store without editing files.
"""

from __future__ import annotations

import os

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
    reports = luigi.Parameter(
        default="reports",
        description="Folder for reports that CI archives (accuracy reports, JUnit XML).",
    )


def store_uri() -> str:
    return os.environ.get("MLBUILD_STORE") or mlbuild().store


def cache_dir() -> str:
    return os.environ.get("MLBUILD_CACHE") or mlbuild().cache


def reports_dir() -> str:
    return os.environ.get("MLBUILD_REPORTS") or mlbuild().reports
