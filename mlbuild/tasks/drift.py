"""CheckDrift: the data drift gate (``[gates.drift]``): new data against the released
model's training data, before anything is trained on it.

The new data is the output ``data_output`` of the project's ``data_task()``. The reference
is the data models.lock names for the released model (its entry's ``data``), read from the
store by key and verified against its sha256. When the lock releases a model trained on
this very data (the same data task fingerprint), the reference is the data that one was
compared with when it was published (``data.baseline``): the change gate treats the
released model the same way, so that publishing does not change what this task compares
and a second run stays a no-op. No release, no ``data`` in the lock, or reference data gone
from the store: every result is "not gated", with the reason.

Reports (``drift.json``, ``junit.xml``, ``report.md``, ``report.html``: the drifted columns
first) go to the store and to ``reports/drift/``, also when the gate fails, which raises
GateFailedError (exit 8).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from mlbuild.accuracy.drift import Drift, DriftConfig, check_drift, not_gated
from mlbuild.accuracy.report import DRIFT_FILES, write_drift_reports
from mlbuild.data import read_frame
from mlbuild.errors import BuildError, ConfigError, GateFailedError, MissingError
from mlbuild.release import LockFile
from mlbuild.settings import cache_dir, reports_dir
from mlbuild.store import LocalCache
from mlbuild.tasks.release import ReleaseTask

#: what identifies a table in the store: the fields of the lock entry's ``data``
DATA_KEYS = ("task", "fingerprint", "output", "file", "sha256", "snapshot")


def data_record(task, output: str) -> dict[str, Any]:
    """``{task, fingerprint, output, file, sha256, snapshot}`` of a complete data task's
    output, from its manifest (``snapshot``: what the task's manifest says, else None)."""
    manifest = task.read_manifest()
    if output not in manifest.outputs:
        raise BuildError(f"{task.task_family} has no output {output!r} (it has: "
                         f"{', '.join(manifest.outputs)}).",
                         hint="set data_output in the project's ReleaseTask subclass to the "
                              "output that holds the data table.")
    record = manifest.outputs[output]
    return {"task": task.task_family, "fingerprint": manifest.fingerprint, "output": output,
            "file": record.file, "sha256": record.sha256,
            "snapshot": manifest.extra.get("snapshot")}


def read_drift(path: str | Path) -> tuple[Drift, dict[str, Any] | None]:
    """A drift.json: the check, and the reference it compared with (None: none)."""
    raw = json.loads(Path(path).read_text())
    return Drift.from_dict(raw), raw.get("reference")


class CheckDrift(ReleaseTask):
    """The new data's columns against the released model's training data; see the module."""

    outputs = dict(DRIFT_FILES)
    library_modules = ("mlbuild.accuracy.drift", "mlbuild.accuracy.report",
                       "mlbuild.accuracy.gates", "mlbuild.accuracy.stats", "mlbuild.data.tables")
    library_packages = ("numpy", "pandas", "pyarrow", "scipy")

    def data(self):
        task = self.data_task()
        if task is None:
            raise ConfigError(
                f"{type(self).__name__} compares new data with the released model's training "
                "data, but the project declares no data task.",
                hint="return the task that writes the data table from data_task() in the "
                     "project's ReleaseTask subclass (and name its output in data_output).")
        return task

    def requires(self):
        # The test data too: it is made from the data once that passed validation, and
        # drift on data that breaks the schema would only bury the schema's own message.
        return {"data": self.data(), "validated": self.test_task()}

    def drift_config(self) -> DriftConfig:
        config = self.release_config().gates.drift
        if config is None:
            raise ConfigError(
                f"{type(self).__name__} needs [gates.drift] in the pipeline config: the "
                "levels at which a column's drift warns and fails.",
                hint="add e.g. [gates.drift] with psi = {warn = 0.1, fail = 0.25} (README, "
                     "\"Data drift\").")
        return config

    def settings(self):
        return {"drift": self.drift_config().model_dump(), "label": self.label(),
                "kind": self.kind, "data_output": self.data_output}

    def report_folder(self) -> Path:
        return Path(reports_dir(), "drift")

    # ------------------------------------------------------------- the reference

    def reference(self) -> tuple[dict[str, Any] | None, str | None]:
        """The released data to compare with, or None and why there is none. Read once per
        task instance, so the fingerprint and the build agree."""
        cached = self.__dict__.get("_reference")
        if cached is None:
            cached = self.__dict__["_reference"] = self._find_reference()
        return cached

    def _find_reference(self) -> tuple[dict[str, Any] | None, str | None]:
        publish = self.release_config().publish
        lockfile, name = publish.lockfile, publish.model_name
        entry = LockFile.read(lockfile).models.get(name)
        if entry is None:
            return None, (f"{lockfile} releases no model {name!r} yet, so there is no training "
                          "data to compare with")
        if not entry.data:
            return None, (f"{lockfile} names no training data for {name!r} (it was published "
                          "without a data task, or before the lock recorded it; the next "
                          "publish records it)")
        if entry.data.get("fingerprint") == self.data().fingerprint:
            baseline = entry.data.get("baseline")
            if baseline:
                return baseline, None
            return None, (f"{lockfile} releases a model trained on this very data, which was "
                          "compared with no earlier data when it was published")
        return {k: entry.data.get(k) for k in DATA_KEYS}, None

    def data_digests(self):
        reference, _ = self.reference()
        return {"released training data": reference["sha256"] if reference else "none"}

    def fetch_reference(self, reference: dict[str, Any]) -> tuple[Any, str | None]:
        """The reference table as a frame (verified against its sha256), or None and why."""
        key = f"{reference['task']}/{reference['fingerprint']}/{reference['file']}"
        try:
            path = LocalCache(cache_dir()).fetch(self.store, key, reference["sha256"])
        except MissingError:
            return None, (f"the released model's training data {key} (sha256 "
                          f"{reference['sha256'][:12]}…) is not in the store {self.store.uri}; "
                          "use the store the lock was written for (MLBUILD_STORE)")
        return read_frame(path, f"the released model's training data {key}"), None

    # ------------------------------------------------------------- the check

    def build(self, inputs, outputs):
        config = self.drift_config()
        data = self.upstream()["data"]
        new = data_record(data, self.data_output)
        current = read_frame(inputs["data"][self.data_output], f"the new data ({data})")
        reference, why = self.reference()
        frame = None
        if reference is not None:
            frame, why = self.fetch_reference(reference)
        options = {"label": self.label(), "label_categorical": self.kind == "classification"}
        drift = (check_drift(frame, current, config, **options) if frame is not None
                 else not_gated(current, config, why, **options))
        folder = outputs["drift"].parent
        write_drift_reports(drift, folder, "Data drift: the released model's training data "
                            "against the new data", {"reference": reference, "data": new})
        archive = self.report_folder()
        shutil.copytree(folder, archive, dirs_exist_ok=True)
        if not drift.passed:
            failed = "\n".join(f"  - {r.name}: {r.reason}" for r in drift.failures)
            counts = drift.counts()
            raise GateFailedError(
                f"The data drift gate failed: {', '.join(drift.drifted)} drifted from the "
                f"released model's training data ({counts['failed']} of {counts['gated']} "
                f"statistics failed; {drift.reference_rows} reference rows, "
                f"{drift.current_rows} new rows):\n{failed}\nReports: {archive}/report.html",
                hint="if the change is meant (a new source, a fixed bug), exclude the column "
                     "or raise its levels in [gates.drift] and run again; otherwise fix the "
                     "data before training on it.")
        return {"passed": drift.passed, "summary": drift.summary(), "drifted": drift.drifted,
                "warned": drift.warned, "reference": reference, "data": new}
