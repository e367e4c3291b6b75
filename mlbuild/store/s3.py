"""The S3 store: the same contract as the local store, on any S3 API (AWS, MinIO, moto).

* Atomic writes come from S3 itself: an object (multipart or not) becomes visible whole,
  only when its upload completes. A killed upload leaves an invisible incomplete
  multipart upload, which ``mlbuild gc`` aborts.
* Digests are computed while bytes stream: uploads hash what they read, downloads hash
  what they write, in order, while parts still transfer in parallel.
* Existence is answered with listings: the first question about a key lists its top-level
  folder (one request per 1,000 keys) and later questions are answered from that listing;
  a key the listing lacks is asked about directly, so a result another worker just wrote
  is never missed.
* Endpoint, timeouts, retries and transfer sizes come from ``[mlbuild]`` in luigi.cfg;
  credentials and region from the standard AWS chain. No credential appears in a message.
* The client comes from :func:`mlbuild.aws.client` and its errors go through the shared
  map (:mod:`mlbuild.aws.errors`): a missing object is an ``ObjectMissingError``, a
  corrupt one a ``StoreIntegrityError``, anything else a ``StoreError``.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mlbuild import aws
from mlbuild.errors import ObjectMissingError, StoreError, StoreIntegrityError
from mlbuild.settings import mlbuild as settings
from mlbuild.store.base import ListedObject, ObjectInfo, StaleWrite, Store, check_digest
from mlbuild.store.progress import transfer_progress

LIST_PAGES = 10  # at most 10,000 keys per listing; beyond that, ask key by key


@dataclass(frozen=True)
class S3Options:
    endpoint_url: str = ""
    max_attempts: int = 5
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    part_size_mb: int = 64
    upload_part_size_mb: int = 16
    max_concurrency: int = 8

    @classmethod
    def from_settings(cls) -> S3Options:
        """``[mlbuild] s3_*`` in luigi.cfg; ``MLBUILD_S3_ENDPOINT_URL`` overrides the endpoint."""
        config = settings()
        return cls(
            endpoint_url=os.environ.get("MLBUILD_S3_ENDPOINT_URL") or config.s3_endpoint_url,
            max_attempts=config.s3_max_attempts,
            connect_timeout=config.s3_connect_timeout,
            read_timeout=config.s3_read_timeout,
            part_size_mb=config.s3_part_size_mb,
            upload_part_size_mb=config.s3_upload_part_size_mb,
            max_concurrency=config.s3_max_concurrency,
        )


class _HashingReader:
    """A file wrapper that hashes each byte the first time it is read in order.

    Transfers may read a part twice (a retry, a checksum); the high-water mark makes sure
    every byte is hashed exactly once and in order.
    """

    def __init__(self, file):
        self._file, self._digest, self._hashed = file, hashlib.sha256(), 0

    def read(self, size=-1):
        start = self._file.tell()
        data = self._file.read(size)
        if start <= self._hashed < start + len(data):
            self._digest.update(data[self._hashed - start:])
            self._hashed = start + len(data)
        return data

    def seek(self, offset, whence=os.SEEK_SET):
        return self._file.seek(offset, whence)

    def tell(self):
        return self._file.tell()

    def seekable(self):
        return True

    def close(self):
        pass  # the transfer closes what it reads; the caller owns the file

    def result(self) -> ObjectInfo:
        self._file.seek(self._hashed)
        while chunk := self._file.read(1 << 20):  # whatever no transfer read in order
            self._digest.update(chunk)
            self._hashed += len(chunk)
        return ObjectInfo(self._digest.hexdigest(), self._hashed)


class _HashingWriter:
    """A write-only, non-seekable target: S3's downloader then writes parts in order."""

    def __init__(self, file):
        self._file, self._digest, self.size = file, hashlib.sha256(), 0

    def write(self, data):
        self._digest.update(data)
        self.size += len(data)
        return self._file.write(data)

    def seekable(self):
        return False

    def result(self) -> ObjectInfo:
        return ObjectInfo(self._digest.hexdigest(), self.size)


class S3Store(Store):
    def __init__(self, uri: str, options: S3Options | None = None):
        self.uri = uri.rstrip("/")
        self.bucket, _, prefix = self.uri.removeprefix("s3://").partition("/")
        if not self.bucket:
            raise StoreError(f"Store {uri!r} names no bucket.",
                             hint="name it as s3://bucket/prefix.")
        self.prefix = f"{prefix}/" if prefix else ""
        self.options = options or S3Options.from_settings()
        self.requests = 0  # HTTP requests sent, retries included (for benchmarks)
        self._client = None
        self._listed: dict[str, set[str]] = {}

    # ------------------------------------------------------------------ plumbing

    @property
    def client(self):
        if self._client is None:
            self._client = aws.client(
                "s3", endpoint_url=self.options.endpoint_url,
                max_attempts=self.options.max_attempts,
                connect_timeout=self.options.connect_timeout,
                read_timeout=self.options.read_timeout,
                max_pool_connections=max(10, self.options.max_concurrency),
                on_send=self._count, error=StoreError, label="S3")
        return self._client

    def client_config(self):
        """The botocore ``Config`` of this store's clients: retries, timeouts, pool size.

        Public so that other S3 clients for the same store (Luigi's ``S3Client``, which
        ``BuildTask.output()`` hands to plain Luigi tasks) behave as the store does.
        """
        return aws.client_config(max_attempts=self.options.max_attempts,
                                 connect_timeout=self.options.connect_timeout,
                                 read_timeout=self.options.read_timeout,
                                 max_pool_connections=max(10, self.options.max_concurrency))

    def _count(self, **_):
        self.requests += 1

    def _transfer_config(self, part_size_mb: int):
        return aws.transfer_config(part_size_mb * 1024 * 1024, self.options.max_concurrency)

    @property
    def _transfer(self):
        """For downloads: large ranges, few requests (a ranged GET costs a whole read on moto)."""
        return self._transfer_config(self.options.part_size_mb)

    @property
    def _upload_transfer(self):
        """For uploads: smaller parts, because ``upload_fileobj`` (which the streamed hash
        needs) reads every part into memory, up to ~10 parts at once: 64 MiB parts held
        ~0.5 GiB for a 512 MiB upload, 16 MiB parts ~0.2 GiB."""
        return self._transfer_config(self.options.upload_part_size_mb)

    def _object(self, key: str) -> str:
        if key.startswith("/") or ".." in key.split("/"):
            raise StoreError(f"Store key {key!r} must be relative and must not contain '..'.")
        return self.prefix + key

    def _hints(self, action: str) -> dict[str, str]:
        """What to do, in the store's terms, where that says more than the general hint."""
        return {
            "no_bucket": "create it, or point [mlbuild] store or MLBUILD_STORE at an existing "
                         "bucket.",
            "not_found": "run the task that makes it again (`mlbuild status` shows what is "
                         "missing).",
            "denied": "check the credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID) and that they may "
                      f"{action} in bucket {self.bucket!r}.",
            "throttled": "wait a little and run again (finished tasks are kept), or raise "
                         "[mlbuild] s3_max_attempts.",
            "unreachable": "check that the service is up and that the endpoint "
                           "(AWS_ENDPOINT_URL or [mlbuild] s3_endpoint_url) is right; once it "
                           "is, run again: finished tasks are kept.",
        }

    def _call(self, action: str, key: str | None, fn, *args, **kwargs):
        """``fn(*args, **kwargs)``, its AWS errors translated by the shared map: a missing
        object is an ObjectMissingError, any other failure a StoreError."""
        call = aws.AwsCall(
            "S3", action, self.url(key) if key is not None else self.uri,
            endpoint=self._client.meta.endpoint_url if self._client else aws.endpoint_name(
                self.options.endpoint_url),
            attempts=self.options.max_attempts, bucket=self.bucket)
        with aws.translated(call, error=StoreError, errors={"not_found": ObjectMissingError},
                            hints=self._hints(action)):
            return fn(*args, **kwargs)

    # ------------------------------------------------------------------ the contract

    def exists(self, key: str) -> bool:
        return key in self.exists_many([key])

    def exists_many(self, keys) -> set[str]:
        found = set()
        for key in keys:
            group = key.split("/", 1)[0] + "/"
            known = self._listed.get(group)
            if known is None:
                known = self._listed[group] = set(self._keys(group, LIST_PAGES))
            if key in known or self._head(key):
                known.add(key)
                found.add(key)
        return found

    def _head(self, key: str) -> bool:
        try:
            self._call("read", key, self.client.head_object, Bucket=self.bucket,
                       Key=self._object(key))
            return True
        except ObjectMissingError:
            return False

    def _keys(self, prefix: str, max_pages: int | None = None) -> list[str]:
        folder = self._object(prefix.rstrip("/") + "/") if prefix else self.prefix
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=folder,
                                   PaginationConfig={"PageSize": 1000})
        keys = []

        def collect():
            for number, page in enumerate(pages):
                if max_pages is not None and number >= max_pages:
                    break
                keys.extend(item["Key"][len(self.prefix):] for item in page.get("Contents", ()))

        self._call("list", prefix, collect)
        return keys

    def list(self, prefix: str) -> list[str]:
        return sorted(self._keys(prefix))

    def list_objects(self, prefix: str) -> list[ListedObject]:
        """One paginated ListObjectsV2 (a request per 1,000 keys); ``version_id`` is not
        known from it: :meth:`current_versions` asks for the few that need it."""
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix,
                                   PaginationConfig={"PageSize": 1000})
        found = []

        def collect():
            for page in pages:
                found.extend(
                    ListedObject(item["Key"][len(self.prefix):], item["Size"],
                                 item["LastModified"], item["ETag"].strip('"'))
                    for item in page.get("Contents", ()) if not item["Key"].endswith("/"))

        self._call("list", prefix, collect)
        return sorted(found, key=lambda o: o.key)

    def current_versions(self, objects: list[ListedObject]) -> list[ListedObject]:
        """``objects`` as they are now, with their version ids: one ListObjectVersions
        of their common prefix (a bucket that keeps no versions answers "null", which
        becomes ``None``). Where listing versions is denied, a HeadObject per object."""
        if not objects:
            return []
        common = os.path.commonprefix([o.key for o in objects])
        try:
            current = self._current_versions(common)
        except StoreError as exc:
            if (aws.classify(exc.__cause__) or ("",))[0] != "denied":
                raise
            current = {o.key: self._head_listed(o.key) for o in objects}
        # A key with no current version was deleted since it was listed: keep what the
        # listing said, so that the download (conditional on it) reports the change.
        return [current.get(o.key) or o for o in objects]

    def _current_versions(self, prefix: str) -> dict[str, ListedObject | None]:
        paginator = self.client.get_paginator("list_object_versions")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix,
                                   PaginationConfig={"PageSize": 1000})
        current: dict[str, ListedObject | None] = {}

        def collect():
            for page in pages:
                for marker in page.get("DeleteMarkers", ()):
                    if marker.get("IsLatest"):
                        current[marker["Key"][len(self.prefix):]] = None
                for item in page.get("Versions", ()):
                    if item.get("IsLatest"):
                        version = item.get("VersionId")
                        current[item["Key"][len(self.prefix):]] = ListedObject(
                            item["Key"][len(self.prefix):], item["Size"], item["LastModified"],
                            item["ETag"].strip('"'), None if version in (None, "null") else version)

        self._call("list versions in", prefix, collect)
        return current

    def _head_listed(self, key: str) -> ListedObject | None:
        try:
            head = self._call("read", key, self.client.head_object, Bucket=self.bucket,
                              Key=self._object(key))
        except ObjectMissingError:
            return None
        version = head.get("VersionId")
        return ListedObject(key, head["ContentLength"], head["LastModified"],
                            head["ETag"].strip('"'), None if version in (None, "null") else version)

    def _remember(self, key: str) -> None:
        known = self._listed.get(key.split("/", 1)[0] + "/")
        if known is not None:
            known.add(key)

    def put_file(self, path: str | os.PathLike, key: str) -> ObjectInfo:
        try:
            file = open(path, "rb")  # noqa: SIM115 - closed below; upload errors must pass
        except OSError as exc:
            raise StoreError(f"Cannot read {path} to store it as {self.url(key)}: {exc}.") from exc
        size = os.fstat(file.fileno()).st_size
        with file, transfer_progress(f"upload {Path(key).name}", size) as callback:
            reader = _HashingReader(file)
            try:
                self._call("write", key, self.client.upload_fileobj, reader, self.bucket,
                           self._object(key), Config=self._upload_transfer, Callback=callback)
                info = reader.result()
            except StoreError:
                raise
            except OSError as exc:  # the local file broke mid-way; S3 kept nothing of it
                raise StoreError(f"Cannot read {path} while storing it as {self.url(key)}: "
                                 f"{exc}.") from exc
        self._remember(key)
        return info

    def put_bytes(self, data: bytes, key: str) -> ObjectInfo:
        self._call("write", key, self.client.put_object, Bucket=self.bucket,
                   Key=self._object(key), Body=data)
        self._remember(key)
        return ObjectInfo(hashlib.sha256(data).hexdigest(), len(data))

    def version(self, key: str) -> str:
        """What identifies the object's current content without reading it: ETag and version."""
        head = self._call("read", key, self.client.head_object, Bucket=self.bucket,
                          Key=self._object(key))
        return f"etag:{head['ETag'].strip(chr(34))};version:{head.get('VersionId') or '-'}"

    def get_version(self, key: str, dest: str | os.PathLike, version: str) -> ObjectInfo:
        """Download ``key`` to ``dest`` (atomically) only if it is still at ``version``.

        ``version`` is what :meth:`version` returned. The request is conditional
        (``If-Match`` on the ETag, and the version id when the bucket keeps versions), so
        S3 itself refuses an object that changed since: a StoreIntegrityError. The
        sha256 is computed while the bytes stream to disk.
        """
        fields = dict(part.partition(":")[::2] for part in version.split(";"))
        request = {"Bucket": self.bucket, "Key": self._object(key), "IfMatch": f'"{fields["etag"]}"'}
        if fields.get("version", "-") != "-":
            request["VersionId"] = fields["version"]
        try:
            response = self._call("read", key, self.client.get_object, **request)
        except StoreError as exc:
            if getattr(exc.__cause__, "response", {}).get("Error", {}).get("Code") not in (
                    "PreconditionFailed", "412"):
                raise
            raise StoreIntegrityError(
                f"{self.url(key)} changed after its version ({version}) was fingerprinted, "
                "so the build would read other bytes than those its fingerprint names.",
                hint="run again once the object has stopped changing; its new version is "
                     "then fingerprinted and built") from exc.__cause__
        dest = Path(dest)
        tmp = dest.with_name(f".{dest.name}.tmp-{uuid.uuid4().hex}")
        body = response["Body"]
        try:
            with open(tmp, "wb") as file, transfer_progress(
                    f"download {dest.name}", response.get("ContentLength", 0)) as cb:
                writer = _HashingWriter(file)

                def copy():
                    for chunk in body.iter_chunks(1 << 20):
                        writer.write(chunk)
                        if cb is not None:
                            cb(len(chunk))

                self._call("read", key, copy)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return writer.result()

    def _size(self, key: str) -> int:
        head = self._call("read", key, self.client.head_object, Bucket=self.bucket,
                          Key=self._object(key))
        return head["ContentLength"]

    def get_file(self, key: str, dest: str | os.PathLike, sha256: str | None = None) -> ObjectInfo:
        dest = Path(dest)
        tmp = dest.with_name(f".{dest.name}.tmp-{uuid.uuid4().hex}")
        try:
            with open(tmp, "wb") as file, transfer_progress(
                    f"download {dest.name}", lambda: self._size(key)) as cb:
                writer = _HashingWriter(file)
                self._call("read", key, self.client.download_fileobj, self.bucket,
                           self._object(key), writer, Config=self._transfer, Callback=cb)
            info = writer.result()
            check_digest(info, sha256, self.url(key))
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return info

    def _stream(self, key: str):
        response = self._call("read", key, self.client.get_object, Bucket=self.bucket,
                              Key=self._object(key))
        return response["Body"]

    def get_bytes(self, key: str, sha256: str | None = None) -> bytes:
        body = self._stream(key)
        data = self._call("read", key, body.read)
        check_digest(ObjectInfo(hashlib.sha256(data).hexdigest(), len(data)), sha256, self.url(key))
        return data

    def digest(self, key: str) -> ObjectInfo:
        body = self._stream(key)

        def consume() -> ObjectInfo:
            digest, size = hashlib.sha256(), 0
            for chunk in body.iter_chunks(1 << 20):
                digest.update(chunk)
                size += len(chunk)
            return ObjectInfo(digest.hexdigest(), size)

        return self._call("read", key, consume)

    def delete(self, key: str) -> None:
        self._call("delete", key, self.client.delete_object, Bucket=self.bucket,
                   Key=self._object(key))
        self._listed.get(key.split("/", 1)[0] + "/", set()).discard(key)

    def stale_writes(self, older_than: timedelta) -> list[StaleWrite]:
        cutoff = datetime.now(UTC) - older_than
        paginator = self.client.get_paginator("list_multipart_uploads")
        stale = []

        def collect():
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for upload in page.get("Uploads", ()):
                    if upload["Initiated"] <= cutoff:
                        key = upload["Key"][len(self.prefix):]
                        stale.append(StaleWrite(key, upload["UploadId"], upload["Initiated"]))

        self._call("list uploads in", None, collect)
        return stale

    def discard(self, stale: StaleWrite) -> None:
        self._call("abort the upload of", stale.key, self.client.abort_multipart_upload,
                   Bucket=self.bucket, Key=self._object(stale.key), UploadId=stale.ident)
