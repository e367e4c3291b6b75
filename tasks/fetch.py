"""FetchData: bring the raw data set into the store as a CSV file.

Sources: ``builtin:digits`` (scikit-learn's bundled handwritten digits, written out as
the CSV a real project would download), ``file://path``, ``https://url`` and
``s3://bucket/key``. With a pinned ``sha256`` the bytes must match it; without one, a
file's content digest (an URL's ETag, an S3 object's ETag and version) enters the
fingerprint, so changed data re-runs the pipeline.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from mlbuild import BuildTask, ConfigError, IntegrityError, MissingError
from mlbuild.store import copy_hashing, file_digest, locate
from tasks.config import load

BUILTINS = ("builtin:digits", "builtin:synthetic")
TIMEOUT = 60


def _local_path(source: str) -> Path:
    return Path(source.removeprefix("file://"))


def _check_source(source: str) -> None:
    if source in BUILTINS or source.startswith(("file://", "https://", "http://", "s3://")):
        return
    raise ConfigError(
        f"data.source = {source!r} in the pipeline config is not a known source. "
        f"Expected one of {', '.join(BUILTINS)}, file://path, https://url or s3://bucket/key."
    )


def _url_version(url: str) -> str:
    """What identifies the current content of an URL without downloading it."""
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            headers = response.headers
    except (urllib.error.URLError, OSError) as exc:
        raise MissingError(f"Cannot reach data.source {url}: {exc}. Hint: check the URL.") from exc
    version = headers.get("ETag") or headers.get("Last-Modified")
    if not version:
        raise ConfigError(
            f"data.source {url} sends neither ETag nor Last-Modified, so a change could not be "
            "noticed. Hint: pin data.sha256 in the pipeline config."
        )
    return f"{version};{headers.get('Content-Length', '')}"


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


def _download(url: str, dest: Path) -> str:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response, open(dest, "wb") as out:
            return copy_hashing(response, out).sha256
    except (urllib.error.URLError, OSError) as exc:
        raise MissingError(f"Cannot download data.source {url}: {exc}.") from exc


class FetchData(BuildTask):
    outputs = {"raw": "raw.csv"}
    packages = ("scikit-learn",)  # builtin:digits ships inside it

    def settings(self):
        return {"data": load().data.model_dump()}

    def data_digests(self):
        data = load().data
        _check_source(data.source)
        if data.sha256:
            return {data.source: data.sha256}
        if data.source.startswith("file://"):
            path = _local_path(data.source)
            if not path.is_file():
                raise MissingError(
                    f"data.source {data.source} does not exist (looked for {path.resolve()}). "
                    "Hint: check the path in configs/pipeline.toml."
                )
            return {data.source: file_digest(path).sha256}
        if data.source.startswith(("https://", "http://")):
            return {data.source: _url_version(data.source)}
        if data.source.startswith("s3://"):
            store, key = locate(data.source)
            return {data.source: store.version(key)}
        return {}

    def build(self, inputs, outputs):
        data = load().data
        raw = outputs["raw"]
        if data.source == "builtin:digits":
            digits_frame().to_csv(raw, index=False)
            sha256 = file_digest(raw).sha256
        elif data.source == "builtin:synthetic":
            s = data.synthetic
            synthetic_frame(s.rows, s.features, s.classes, s.seed).to_csv(raw, index=False)
            sha256 = file_digest(raw).sha256
        elif data.source.startswith("file://"):
            with open(_local_path(data.source), "rb") as src, open(raw, "wb") as out:
                sha256 = copy_hashing(src, out).sha256
        elif data.source.startswith("s3://"):
            store, key = locate(data.source)
            sha256 = store.get_file(key, raw).sha256
        else:
            sha256 = _download(data.source, raw)
        if data.sha256 and sha256 != data.sha256:
            raise IntegrityError(
                f"data.source {data.source} has sha256 {sha256}, but data.sha256 pins "
                f"{data.sha256}. The data changed, or the pin is wrong. Hint: check the source; "
                "if the change is intended, update data.sha256 in configs/pipeline.toml."
            )
        return {"source": data.source, "sha256": sha256}


