"""Data sources other than the built-in one, and the `mlbuild models` commands."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading

import pytest

from mlbuild import read_frame
from mlbuild.errors import IntegrityError, MissingError
from tests.conftest import edited_digits, ok

pytestmark = pytest.mark.integration


def _digits_csv(rows: int | None = None) -> str:
    from tasks.fetch import digits_frame

    return digits_frame().iloc[:rows].to_csv(index=False)


@pytest.fixture
def http_folder(tmp_path):
    """A real HTTP server on loopback serving a folder."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_http_source_is_fetched_and_a_change_upstream_re_runs_everything(project, http_folder):
    folder, base = http_folder
    (folder / "digits.csv").write_text(_digits_csv())
    project.edit("configs/pipeline.toml", 'source = "builtin:digits"',
                 f'source = "{base}/digits.csv"')
    ok(project.luigi())
    before = project.manifests()
    ok(project.luigi())
    assert project.ran_since(before) == set()

    changed = edited_digits().to_csv(index=False)
    (folder / "digits.csv").write_text(changed)  # the data changed upstream
    ok(project.luigi())
    assert "FetchData" in project.ran_since(before)
    raw = next(p for p in project.store.glob("FetchData/*/raw.arrow")
               if p.parent.name not in {k.split("/")[1] for k in before})
    assert read_frame(raw).equals(edited_digits())


def test_a_pinned_file_source_with_the_right_digest_is_used(project):
    text = _digits_csv()
    (project.root / "digits.csv").write_text(text)
    digest = hashlib.sha256(text.encode()).hexdigest()
    project.edit("configs/pipeline.toml", 'source = "builtin:digits"', 'source = "file://digits.csv"')
    project.edit("configs/pipeline.toml", "# sha256 = ", f'sha256 = "{digest}" #')
    ok(project.luigi())
    manifest = next(project.store.glob("FetchData/*/manifest.json")).read_text()
    assert digest in manifest


def test_models_list_verify_and_pull(built):
    listed = ok(built.mlbuild("models", "list")).stdout
    assert "digits" in listed and "accuracy=" in listed
    assert "sha256:" in listed
    ok(built.mlbuild("models", "verify"))
    pulled = ok(built.mlbuild("models", "pull", "digits")).stdout
    assert ".mlbuild/cache/sha256/" in pulled


def test_models_verify_names_a_tampered_model_and_both_digests(built, tmp_path):
    model = next(built.store.glob("models/digits/*/model.txt"))
    recorded = model.parent.name.removeprefix("sha256-")
    model.write_bytes(model.read_bytes()[:-10])  # truncated
    env_cache = tmp_path / "fresh-cache"  # so the verified copy in the cache is not used
    built.edit("luigi.cfg", "cache = .mlbuild/cache", f"cache = {env_cache}")
    result = built.mlbuild("models", "verify")
    assert result.returncode == IntegrityError.exit_code
    assert "digits" in result.stdout and recorded in result.stdout
    assert hashlib.sha256(model.read_bytes()).hexdigest() in result.stdout
    assert str(model.relative_to(built.root)) in result.stdout


def test_models_verify_reports_a_missing_model(built):
    next(built.store.glob("models/digits/*/model.txt")).unlink()
    result = built.mlbuild("models", "verify", "--lock", "models.lock")
    assert result.returncode == MissingError.exit_code
    assert "does not exist" in result.stdout


def test_models_pull_of_an_unknown_model_lists_the_known_ones(built):
    result = built.mlbuild("models", "pull", "nosuch")
    assert result.returncode == MissingError.exit_code
    assert "no model named 'nosuch'" in result.stderr and "digits" in result.stderr
