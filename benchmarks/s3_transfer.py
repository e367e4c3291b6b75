"""Benchmark: a 512 MiB artifact up to S3 and back, through the store versus bare boto3.

    python benchmarks/s3_transfer.py [--mb 512] [--repeat 3] [--part-mb 64] [--concurrency 8]

It writes an artifact of random bytes in a temporary folder, then measures, in this
process, on a private moto S3 server (``tests.services``) on a free loopback port:

* the store: ``S3Store.put_file`` (sha256 computed while the parts are read) and
  ``S3Store.get_file`` with the expected sha256 (computed while the parts are written,
  checked before the file is renamed into place);
* bare boto3: ``upload_file`` / ``download_file`` with the store's own ``TransferConfig``
  (part size and parallel parts from ``S3Options``: 64 MiB and 8 by default), and a client
  with the same connection pool, without any hashing.

Each of the R rounds (default 3) starts a fresh moto server (moto keeps every byte it was
sent in one Python process and its memory only grows, see ENVIRONMENT.md), warms it with
one untimed upload and download of the artifact (the first large transfer into a fresh
server is slower, whoever makes it), then times one upload and one download each, store
and bare interleaved (the order alternates between rounds). Each upload's object is
deleted after it is measured, except the round's last, which the downloads read and which
is deleted after them. Every transfer is checked against the artifact's sha256 (outside
the timings for bare boto3). No progress bar is drawn (stderr is not a terminal during the
transfers), as in CI. Medians are printed, never asserted; the exit code is non-zero only
when a transfer fails or its bytes differ. Everything (the temporary folder, moto's
spilled objects, the server) is removed at the end.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import statistics
import time
from pathlib import Path

import harness

BUCKET = "bench-transfer"
MIB = 1024 * 1024


def write_artifact(path: Path, size_mb: int) -> str:
    """``size_mb`` MiB of random bytes at ``path``; returns their sha256."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "wb") as out:
        for _ in range(size_mb):
            chunk = os.urandom(MIB)
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = harness.parser(__doc__, repeat=3, keep=True, quick={"mb": 64, "repeat": 1})
    parser.add_argument("--mb", type=harness.positive_int, default=512,
                        help="artifact size in MiB (512)")
    parser.add_argument("--part-mb", type=harness.positive_int, default=None,
                        help="part size in MiB (default: S3Options', 64)")
    parser.add_argument("--concurrency", type=harness.positive_int, default=None,
                        help="parallel parts (default: S3Options', 8)")
    args = harness.parse(parser, argv)

    import boto3
    from boto3.exceptions import Boto3Error
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    from mlbuild.errors import MlbuildError
    from mlbuild.store import file_digest
    from mlbuild.store.s3 import S3Options, S3Store

    defaults = S3Options()
    options = S3Options(
        part_size_mb=args.part_mb or defaults.part_size_mb,
        max_concurrency=args.concurrency or defaults.max_concurrency,
    )
    # The same AWS environment for both: the services' dummy credentials, no user config,
    # and the endpoint from AWS_ENDPOINT_URL (set per round), as the store takes it in
    # real use.
    work = harness.work_folder("s3_transfer")
    environ = harness.clean_environ()
    os.environ.clear()
    os.environ.update(environ)
    artifact = work / "artifact.bin"
    size = args.mb * MIB
    key = "artifact.bin"
    times: dict[tuple[str, str], list[float]] = {
        (op, who): [] for op in ("upload", "download") for who in ("store", "bare")
    }
    moto_peaks: list[float | None] = []
    server = None

    def fail(message: str) -> None:
        log = ""
        if server is not None and server.logfile.exists():
            log = ("--- last lines of the moto server's log:\n"
                   + "\n".join(server.logfile.read_text().splitlines()[-20:]))
        harness.fail(message, log)

    def timed(op: str, who: str, action, *args, **kwargs):
        error = None
        with contextlib.redirect_stderr(io.StringIO()):  # no progress bar, as in CI
            try:
                seconds, result = harness.timed(action, *args, **kwargs)
            except (MlbuildError, Boto3Error, BotoCoreError, ClientError, OSError) as exc:
                error = exc
        if error is not None:
            fail(f"the {who} {op} failed: {type(error).__name__}: {error}")
        times[op, who].append(seconds)
        return result

    try:
        print(f"Work folder: {work}")
        started = time.perf_counter()
        digest = write_artifact(artifact, args.mb)
        print(f"Artifact: {args.mb} MiB of random bytes in {time.perf_counter() - started:.1f} s,"
              f" sha256 {digest[:16]}...")
        started = time.perf_counter()
        if file_digest(artifact).sha256 != digest:
            fail("the artifact changed on disk")
        hash_seconds = time.perf_counter() - started

        for r in range(args.repeat):
            server = harness.private_moto(work, name=f"moto-{r + 1}")
            server.start()
            os.environ.update(harness.aws_environ(server.url, work))
            store = S3Store(f"s3://{BUCKET}", options)
            # The store's own TransferConfigs, so that both use the same.
            transfer, upload_transfer = store._transfer, store._upload_transfer
            bare = boto3.session.Session().client(
                "s3", config=Config(max_pool_connections=max(10, options.max_concurrency)))
            bare.create_bucket(Bucket=BUCKET)
            # Untimed: one transfer each way. The first large transfer into a fresh server
            # is slower than the next ones (its memory grows), whoever makes it.
            with contextlib.redirect_stderr(io.StringIO()):
                store.put_file(artifact, "warm")
                bare.download_file(BUCKET, "warm", str(work / "warm.bin"), Config=transfer)
            (work / "warm.bin").unlink()
            bare.delete_object(Bucket=BUCKET, Key="warm")

            order = ("store", "bare") if r % 2 == 0 else ("bare", "store")
            for i, who in enumerate(order):
                if who == "store":
                    info = timed("upload", who, store.put_file, artifact, key)
                    if (info.sha256, info.size) != (digest, size):
                        fail(f"the store hashed the upload as {info.sha256} ({info.size} bytes)")
                else:
                    timed("upload", who, bare.upload_file, str(artifact), BUCKET, key,
                          Config=upload_transfer)
                head = bare.head_object(Bucket=BUCKET, Key=key)
                parts = head["ETag"].strip('"').partition("-")[2] or "1"
                if head["ContentLength"] != size:
                    fail(f"the {who} upload stored {head['ContentLength']} bytes, not {size}")
                if i < len(order) - 1:  # the last upload stays, for the downloads
                    bare.delete_object(Bucket=BUCKET, Key=key)

            for who in order:
                dest = work / f"download-{who}.bin"
                if who == "store":
                    info = timed("download", who, store.get_file, key, dest, digest)
                else:
                    timed("download", who, bare.download_file, BUCKET, key, str(dest),
                          Config=transfer)
                    info = file_digest(dest)
                if (info.sha256, info.size) != (digest, size) or dest.stat().st_size != size:
                    fail(f"the {who} download differs from the artifact")
                dest.unlink()
            bare.delete_object(Bucket=BUCKET, Key=key)

            moto_peaks.append(harness.peak_rss_mib(server.pid()))
            server.stop()
            server = None
            print(f"  round {r + 1}/{args.repeat} ({' then '.join(order)}, {parts} parts): "
                  + "  ".join(f"{op} {who} {args.mb / times[op, who][-1]:6.1f} MiB/s"
                              for op, who in times))
    finally:
        if server is not None:
            server.stop()
        if args.keep:
            print(f"Files kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in times.items()}
    harness.print_comparison(
        f"Transfer of a {args.mb} MiB artifact to and from S3 (moto server, restarted each "
        f"round): part size {options.part_size_mb} MiB, {options.max_concurrency} parallel "
        f"parts, {args.repeat} rounds, medians", [(op, med[op, "store"], med[op, "bare"])
                                  for op in ("upload", "download")],
                             names=("store (sha256 streamed)", "bare boto3"))
    for op in ("upload", "download"):
        print(f"  {op} MiB/s, medians: store {args.mb / med[op, 'store']:.1f}, "
              f"bare {args.mb / med[op, 'bare']:.1f}")
    for op in ("upload", "download"):
        spread = "  ".join(f"{who} " + "/".join(f"{args.mb / s:.0f}" for s in times[op, who])
                           for who in ("store", "bare"))
        print(f"  {op} MiB/s per round: {spread}")
    print(f"  for reference: sha256 of the artifact read from disk once: "
          f"{args.mb / hash_seconds:.0f} MiB/s ({hash_seconds:.2f} s)")
    peaks = [f"{p:.0f}" for p in moto_peaks if p is not None]
    if peaks:
        print(f"  moto server peak memory per round: {', '.join(peaks)} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
