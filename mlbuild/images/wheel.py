"""A wheel of the mlbuild that is running, for the training image to install.

Written from the imported package itself, not from a checkout or an index: the image then
holds exactly the code whose digests entered the fingerprints, however mlbuild was
installed here (a wheel, an editable checkout, a folder on PYTHONPATH). A wheel is a zip
with three metadata files (PEP 427); writing it directly needs no build tools, and with
fixed timestamps the same code gives the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import zipfile
from pathlib import Path

EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


def runtime_dependencies() -> list[str]:
    """mlbuild's requirements without its extras (the dev tools)."""
    return [r for r in importlib.metadata.requires("mlbuild") or [] if "extra ==" not in r]


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(dest: Path) -> Path:
    """Write the wheel into ``dest``; return its path."""
    version = importlib.metadata.version("mlbuild")
    package = Path(__file__).resolve().parents[1]  # the mlbuild package this module is in
    info = f"mlbuild-{version}.dist-info"
    files = {f"mlbuild/{p.relative_to(package).as_posix()}": p.read_bytes()
             for p in sorted(package.rglob("*"))
             if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    files[f"{info}/METADATA"] = "\n".join([
        "Metadata-Version: 2.1", "Name: mlbuild", f"Version: {version}",
        *(f"Requires-Dist: {r}" for r in runtime_dependencies()), ""]).encode()
    files[f"{info}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: mlbuild\n"
                              b"Root-Is-Purelib: true\nTag: py3-none-any\n")
    record = [_record_line(name, data) for name, data in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    dest.mkdir(parents=True, exist_ok=True)
    wheel = dest / f"mlbuild-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            entry = zipfile.ZipInfo(name, EPOCH)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, data)
    return wheel
