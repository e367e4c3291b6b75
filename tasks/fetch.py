"""FetchData: the raw data set, as a typed Arrow table in the store.

Sources: ``builtin:digits`` (scikit-learn's handwritten digits), ``builtin:synthetic``,
and the URIs mlbuild fetches (file://, https://, s3://) of a CSV, Parquet or Arrow file,
whose content identity enters the fingerprint; a pinned ``sha256`` must match the bytes.
A path with a ``*`` is a series of snapshots, ``[data] snapshot`` picks one.
"""

from __future__ import annotations

from mlbuild import BuildTask, ConfigError, sources, write_table
from tasks.config import load

BUILTINS = ("builtin:digits", "builtin:synthetic")


def digits_frame():
    """scikit-learn's handwritten digits as a table: pixel_0_0 … pixel_7_7 and label."""
    from sklearn.datasets import load_digits

    frame = load_digits(as_frame=True).frame.astype("int64")
    return frame.rename(columns={"target": "label"})


def synthetic_frame(rows: int, features: int, classes: int, seed: int):
    """A seeded classification data set: ``f0 … f{features-1}`` and ``label``."""
    import pandas as pd
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=rows, n_features=features,
                               n_informative=min(features, max(2, features // 2)),
                               n_classes=classes, n_clusters_per_class=1, random_state=seed)
    frame = pd.DataFrame(x.round(6), columns=[f"f{i}" for i in range(features)])
    frame["label"] = y
    return frame


class FetchData(BuildTask):
    outputs = {"raw": "raw.arrow"}
    packages = ("scikit-learn", "pandas", "pyarrow")  # builtin:digits ships inside scikit-learn

    def settings(self):
        return {"data": load().data.model_dump()}

    def data_digests(self):
        data = load().data
        if data.source in BUILTINS:
            return {}
        if not sources.is_uri(data.source):
            raise ConfigError(f"data.source = {data.source!r} in the pipeline config is not a "
                              "known source.", hint=f"use one of {', '.join(BUILTINS)}, "
                              "file://path, https://url or s3://bucket/key.")
        return {data.source: data.sha256 or sources.version(data.source, data.snapshot)}

    def build(self, inputs, outputs):
        data = load().data
        if data.source not in BUILTINS:  # exactly the version the fingerprint names
            got = sources.fetch_table(data.source, outputs["raw"], data.sha256,
                                      select=data.snapshot,
                                      version=self.fingerprint_inputs()["data"][data.source])
            if sources.is_snapshot(data.source):
                return {"source": data.source, "snapshot": got.partition("@")[0]}
            return {"source": data.source, "sha256": got}
        s = data.synthetic
        frame = (digits_frame() if data.source == "builtin:digits"
                 else synthetic_frame(s.rows, s.features, s.classes, s.seed))
        write_table(frame, outputs["raw"])
        return {"source": data.source,
                "sha256": sources.check_file(data.source, outputs["raw"], data.sha256)}
