"""``models.lock``: the file in git that pins each released model to its bytes in the store.

It is JSON with sorted keys and one field per line, so a change reads well in a diff and
an unchanged model leaves the file byte-identical::

    {
      "models": {
        "digits": {
          "created": "2026-11-27T18:40:02.113+00:00",
          "fingerprint": "<fingerprint of the task that trained it>",
          "metrics": {"accuracy": 0.97},
          "sha256": "…",
          "size": 181234,
          "uri": ".mlbuild/store/models/digits/sha256-…/model.txt",
          "baseline": null
        }
      },
      "version": 1
    }
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlbuild.errors import ConfigError, MissingError

VERSION = 1


@dataclass(frozen=True)
class ModelEntry:
    uri: str
    sha256: str
    size: int
    fingerprint: str
    created: str
    metrics: dict[str, Any] = field(default_factory=dict)
    #: the released model this one was compared with before it was published ({sha256, uri})
    baseline: dict[str, str] | None = None
    #: set when the released model could not be compared with this one (the features it
    #: needed were gone) and the configuration accepted that: {missing_features, accepted_by}
    incomparable: dict[str, Any] | None = None


def _entry_dict(entry: ModelEntry) -> dict[str, Any]:
    """An entry as the lock writes it: ``incomparable`` only where it happened, so locks
    written before the field existed stay byte-identical."""
    raw = asdict(entry)
    if raw["incomparable"] is None:
        del raw["incomparable"]
    return raw


@dataclass(frozen=True)
class LockFile:
    models: dict[str, ModelEntry] = field(default_factory=dict)

    @classmethod
    def read(cls, path: str | os.PathLike) -> LockFile:
        """Read a lock file; a missing file is an empty lock."""
        path = Path(path)
        if not path.exists():
            return cls()
        try:
            raw = json.loads(path.read_text())
            if raw.get("version") != VERSION:
                raise ValueError(f"version {raw.get('version')!r}, expected {VERSION}")
            models = {name: ModelEntry(**entry) for name, entry in raw["models"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(
                f"{path} is not a valid models.lock ({exc}).",
                hint="restore it from git, or delete it and run the pipeline to write it again.",
            ) from exc
        return cls(models)

    def to_text(self) -> str:
        raw = {"version": VERSION, "models": {n: _entry_dict(e) for n, e in self.models.items()}}
        return json.dumps(raw, sort_keys=True, indent=2) + "\n"

    def write(self, path: str | os.PathLike) -> None:
        """Write atomically; leave the file untouched when its text would not change."""
        path = Path(path)
        text = self.to_text()
        if path.exists() and path.read_text() == text:
            return
        tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
        tmp.write_text(text)
        os.replace(tmp, path)

    def with_model(self, name: str, entry: ModelEntry) -> LockFile:
        return LockFile({**self.models, name: entry})

    def entry(self, name: str, path: str | os.PathLike = "models.lock") -> ModelEntry:
        try:
            return self.models[name]
        except KeyError:
            known = ", ".join(sorted(self.models)) or "none"
            raise MissingError(
                f"{path} has no model named {name!r} (it has: {known}).",
                hint="run the pipeline (`make pipeline`) to train and publish it.",
            ) from None
