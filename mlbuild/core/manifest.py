"""The manifest: the record that makes a task's result complete (DESIGN.md, invariant 2).

It is written last, after every output is in the store, so its existence proves the
outputs are whole; it records their digests, so every later read can be verified; and it
records provenance: what went into the fingerprint, where and when the task ran.
"""

from __future__ import annotations

import json
import platform
import socket
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from mlbuild.errors import StoreError

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class OutputRecord:
    file: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    family: str
    task_id: str
    fingerprint: str
    inputs: dict[str, Any]
    outputs: dict[str, OutputRecord]
    started: str
    finished: str
    git_commit: str | None = None
    host: str = ""
    python: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), sort_keys=True, indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, where: str) -> Manifest:
        try:
            raw = json.loads(data)
            raw["outputs"] = {k: OutputRecord(**v) for k, v in raw["outputs"].items()}
            return cls(**raw)
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(
                f"The manifest {where} cannot be read ({exc}).",
                hint="delete it so that its task runs again.",
            ) from exc


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@cache
def git_commit() -> str | None:
    """The commit of the working directory, with ``+dirty`` when it has uncommitted edits."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], check=False, capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            check=False, capture_output=True, text=True, timeout=10,
        )
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def host() -> str:
    return socket.gethostname()


def python_version() -> str:
    return platform.python_version()
