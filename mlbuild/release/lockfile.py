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

Two optional fields appear only when set, so a lock written before they existed stays
byte-identical:

- ``incomparable``: the released model could not be compared with this one (the features
  it needed were gone) and the configuration accepted that:
  ``{"missing_features": [...], "accepted_by": ...}``.
- ``data``: the training data of the released model, so a release can be traced back to
  (and re-made from) exactly those bytes::

      "data": {
        "task": "SplitData",              # the task family that wrote the training data
        "fingerprint": "<that task's fingerprint>",
        "output": "train",                # the output's name in that task's manifest
        "file": "train.rows.arrow",       # its file name
        "sha256": "…",                    # its bytes
        "snapshot": null                  # the named data snapshot it came from, if any
      }

  With the drift gate, ``data`` also holds ``baseline``: the released data that gate
  compared this model's data with (as ``baseline`` is the change gate's reference).

Every read-modify-write goes through :meth:`LockFile.update`, which holds an exclusive
lock for the whole step: two workers publishing at once each keep their entry.
"""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from collections.abc import Callable
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
    #: the training data of this model: {task, fingerprint, output, file, sha256, snapshot}
    data: dict[str, Any] | None = None


#: fields the lock writes only when set, so locks written before they existed stay the same
_OPTIONAL = ("incomparable", "data")


def _entry_dict(entry: ModelEntry) -> dict[str, Any]:
    """An entry as the lock writes it: the optional fields only where they are set."""
    raw = asdict(entry)
    for name in _OPTIONAL:
        if raw[name] is None:
            del raw[name]
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
        return cls.from_text(path.read_text(), str(path))

    @classmethod
    def from_text(cls, text: str, where: str) -> LockFile:
        """Parse a lock's text; ``where`` names it in the error (a path, or REV:path)."""
        try:
            raw = json.loads(text)
            if raw.get("version") != VERSION:
                raise ValueError(f"version {raw.get('version')!r}, expected {VERSION}")
            models = {name: ModelEntry(**entry) for name, entry in raw["models"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(
                f"{where} is not a valid models.lock ({exc}).",
                hint="restore it from git, or delete it and run the pipeline to write it again.",
            ) from exc
        return cls(models)

    @classmethod
    def update(cls, path: str | os.PathLike, change: Callable[[LockFile], LockFile]) -> LockFile:
        """Read the lock, apply ``change`` and write the result, as one step.

        Every process that updates the lock this way waits for the others, so two workers
        publishing at once never lose an entry (each would otherwise read the same old lock
        and the second write would drop the first one's model). ``change`` may raise to
        leave the lock as it is. Returns the lock as written.
        """
        path = Path(path)
        # The flock is taken on a sibling file, not on the lock: write() replaces the lock
        # by a rename, so a flock on it would stay with the old inode while the next writer
        # opens the new one, and nothing would be serialised.
        guard = path.with_name(f".{path.name}.lock")
        with open(guard, "a") as held:
            fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # released when the file is closed
            changed = change(cls.read(path))
            changed.write(path)
        return changed

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
