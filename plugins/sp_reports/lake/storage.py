"""Lake storage: one root (a local directory or ``s3://bucket/prefix``) and one set of storage options.

The options use deltalake's (object_store's) key names, e.g. ``AWS_ACCESS_KEY_ID``, ``AWS_REGION``,
``AWS_ENDPOINT_URL``, ``AWS_ALLOW_HTTP``. Delta tables get them verbatim; the same dict is translated
for the plain files (raw documents, staging Parquet, JSON sidecars), which are read and listed through
``pyarrow.fs`` and, on S3, written and deleted with boto3 (see ``open_output`` and ``delete`` for why).

Every method takes lake-relative paths such as ``raw/GET_X/123/doc.bin`` (build them with
``Lake.path``); ``Lake.uri`` turns one into an absolute location for tools outside the lake.
"""

from __future__ import annotations

import builtins  # in class Lake, ``list`` in annotations means Lake.list
import io
import json
import logging
import os
import re
import shutil
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, BinaryIO
from urllib.parse import urlparse

import pyarrow as pa
from pyarrow import fs as pafs

from .paths import join_path, raw_document_path, staging_dir

log = logging.getLogger(__name__)

# Parts of S3 multipart uploads. S3 needs >= 5 MiB for every part but the last; 16 MiB keeps
# memory bounded while allowing objects up to 160 GB (10,000 parts).
S3_PART_SIZE = 16 * 1024 * 1024
# Sequential reads from S3 are issued as ranged GETs of this size (one request per 8 MiB, not per read()).
S3_READ_BUFFER = 8 * 1024 * 1024

# Storage option keys whose values are safe to show in repr/logs; everything else is masked.
_VISIBLE_OPTION_PARTS = ("REGION", "ENDPOINT", "ALLOW_HTTP", "UNSAFE_RENAME", "CONDITIONAL_PUT")


def temporary_name(name: str) -> str:
    """Where ``open_output`` writes ``name`` before renaming it into place: hidden, so no listing sees it."""
    return f".{name}.{uuid.uuid4().hex}.tmp"


def is_temporary_name(name: str) -> bool:
    return _TEMPORARY_NAME.fullmatch(name) is not None


_TEMPORARY_NAME = re.compile(r"\..+\.[0-9a-f]{32}\.tmp")


class Lake:
    """A data lake rooted at a local directory or an S3 prefix (zones: ``raw/``, ``staging/``, ``tables/``)."""

    def __init__(self, root: str = "./lake", storage_options: Mapping[str, Any] | None = None):
        self._storage_options = {str(k): str(v) for k, v in (storage_options or {}).items()}
        if root.startswith("s3://"):
            bucket_and_prefix = root[len("s3://") :].strip("/")
            if not bucket_and_prefix:
                raise ValueError(f"S3 lake root needs a bucket: {root!r}")
            self.is_s3 = True
            self._fs_root = bucket_and_prefix
            self.root = f"s3://{bucket_and_prefix}"
            self.filesystem: pafs.FileSystem = self._s3_filesystem()
        elif "://" in root and not root.startswith("file://"):
            raise ValueError(f"unsupported lake root {root!r}: use a local path or s3://bucket/prefix")
        else:
            self.is_s3 = False
            local = root[len("file://") :] if root.startswith("file://") else root
            self._fs_root = os.path.abspath(os.path.expanduser(local))
            self.root = self._fs_root
            self.filesystem = pafs.LocalFileSystem()
        self._boto_client = None
        self._boto_lock = threading.Lock()

    # ----------------------------------------------------------------- configuration

    @property
    def storage_options(self) -> dict[str, str]:
        """The options for deltalake (a copy; contains secrets, do not log it)."""
        return dict(self._storage_options)

    def _option(self, *names: str) -> str | None:
        # object_store treats keys case-insensitively, so do the same.
        upper = {k.upper(): v for k, v in self._storage_options.items()}
        for name in names:
            if upper.get(name):
                return upper[name]
        return None

    def _endpoint(self) -> str | None:
        return self._option("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT", "ENDPOINT_URL", "ENDPOINT")

    def _credentials(self) -> tuple[str | None, str | None, str | None, str | None]:
        return (
            self._option("AWS_ACCESS_KEY_ID", "ACCESS_KEY_ID"),
            self._option("AWS_SECRET_ACCESS_KEY", "SECRET_ACCESS_KEY"),
            self._option("AWS_SESSION_TOKEN", "AWS_TOKEN", "SESSION_TOKEN", "TOKEN"),
            self._option("AWS_REGION", "AWS_DEFAULT_REGION", "REGION"),
        )

    def _s3_filesystem(self) -> pafs.S3FileSystem:
        key, secret, token, region = self._credentials()
        kwargs: dict[str, Any] = {}
        endpoint = self._endpoint()
        if endpoint:
            parsed = urlparse(endpoint)
            kwargs["endpoint_override"] = parsed.netloc + parsed.path.rstrip("/")
            kwargs["scheme"] = parsed.scheme or "https"
        # Without explicit keys pyarrow (like deltalake and boto3) falls back to the default AWS credential chain.
        return pafs.S3FileSystem(access_key=key, secret_key=secret, session_token=token, region=region, **kwargs)

    def _s3(self):
        with self._boto_lock:
            if self._boto_client is None:
                import boto3  # only S3 lakes need boto3
                from botocore.config import Config

                key, secret, token, region = self._credentials()
                # A private session: boto3's default session is not thread-safe to create clients from.
                self._boto_client = boto3.session.Session().client(
                    "s3",
                    aws_access_key_id=key,
                    aws_secret_access_key=secret,
                    aws_session_token=token,
                    region_name=region,
                    endpoint_url=self._endpoint(),
                    config=Config(retries={"mode": "standard", "max_attempts": 5}),
                )
            return self._boto_client

    def __reduce__(self):
        # Picklable (e.g. for process pools) without its lock and clients, which are rebuilt.
        return (type(self), (self.root, self._storage_options))

    def __repr__(self) -> str:
        shown = {
            k: (v if any(p in k.upper() for p in _VISIBLE_OPTION_PARTS) else "***")
            for k, v in self._storage_options.items()
        }
        return f"Lake(root={self.root!r}, storage_options={shown!r})"

    # ----------------------------------------------------------------- paths

    def path(self, *parts: str) -> str:
        """Lake-relative path from parts, e.g. ``lake.path("staging", report_type, report_id)``."""
        return join_path(*parts)

    def raw_document_path(self, report_type: str, selling_partner_id: str, report_id: str, document_id: str) -> str:
        """``raw/{report_type}/{selling_partner_id}/{report_id}/{document_id}.bin`` (``paths.raw_document_path``)."""
        return raw_document_path(report_type, selling_partner_id, report_id, document_id)

    def staging_dir(self, table_name: str, selling_partner_id: str, report_id: str) -> str:
        """``staging/{table_name}/{selling_partner_id}/{report_id}`` (see ``paths.staging_dir``)."""
        return staging_dir(table_name, selling_partner_id, report_id)

    def fs_path(self, path: str) -> str:
        """Path of a lake file within ``self.filesystem`` (``bucket/prefix/...`` on S3, absolute locally)."""
        return f"{self._fs_root}/{join_path(path)}"

    def uri(self, path: str) -> str:
        """Absolute location of a lake path (``s3://...`` or a local absolute path)."""
        return f"s3://{self.fs_path(path)}" if self.is_s3 else self.fs_path(path)

    def table_uri(self, name: str) -> str:
        """Location of the Delta table ``tables/{name}``."""
        if not name or not all(c.islower() or c.isdigit() or c == "_" for c in name):
            raise ValueError(f"table names are lower-case letters, digits and '_', got {name!r}")
        return self.uri(self.path("tables", name))

    # ----------------------------------------------------------------- files

    @contextmanager
    def open_output(self, path: str) -> Iterator[BinaryIO]:
        """Write a file atomically: it appears at ``path`` complete, or not at all if the block raises.

        Locally the bytes go to a hidden temporary file in the same directory that is ``os.replace``d
        over ``path`` on success. On S3 the bytes go to a multipart upload that is completed on success
        and aborted on error; pyarrow's S3 output stream can't be used for this because it completes
        the upload even when closed after an exception (a partial object would become visible).
        """
        if self.is_s3:
            bucket, _, key = self.fs_path(path).partition("/")
            upload = _S3Upload(self._s3(), bucket, key, S3_PART_SIZE)
            try:
                yield upload  # type: ignore[misc]  # a writable file object, not an io.BinaryIO subclass
            except BaseException:
                upload.abort()
                raise
            upload.commit()
            return

        final = self.fs_path(path)
        directory, name = os.path.split(final)
        os.makedirs(directory, exist_ok=True)
        tmp = os.path.join(directory, temporary_name(name))
        try:
            with open(tmp, "xb") as f:
                yield f
                if not f.closed:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, final)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise

    def open_input(self, path: str) -> pa.NativeFile:
        """Sequential binary stream of a lake file (use as a context manager)."""
        return self.filesystem.open_input_stream(self.fs_path(path), buffer_size=S3_READ_BUFFER if self.is_s3 else None)

    def open_input_file(self, path: str) -> pa.NativeFile:
        """Random-access binary file (what Parquet readers need)."""
        return self.filesystem.open_input_file(self.fs_path(path))

    def exists(self, path: str) -> bool:
        return self.filesystem.get_file_info(self.fs_path(path)).type != pafs.FileType.NotFound

    def size(self, path: str) -> int:
        info = self.filesystem.get_file_info(self.fs_path(path))
        if info.type != pafs.FileType.File:
            raise FileNotFoundError(path)
        return info.size

    def delete(self, path: str) -> None:
        """Delete a file; a missing file is not an error (deletes are retried by callers)."""
        if self.is_s3:
            # boto3 rather than pyarrow, which would leave a "directory marker" object behind
            # when the last file of a prefix goes.
            bucket, _, key = self.fs_path(path).partition("/")
            self._s3().delete_object(Bucket=bucket, Key=key)
            return
        try:
            os.unlink(self.fs_path(path))
        except FileNotFoundError:
            pass

    def copy(self, source: str, target: str) -> None:
        """Make ``target`` a copy of the file ``source``, atomically (complete or not at all): on S3 a
        server-side copy; locally a hard link (no bytes copied), or a copy where links are not possible."""
        if self.is_s3:
            bucket, _, key = self.fs_path(target).partition("/")
            source_bucket, _, source_key = self.fs_path(source).partition("/")
            self._s3().copy({"Bucket": source_bucket, "Key": source_key}, bucket, key)  # multipart when large
            return
        final = self.fs_path(target)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        try:
            os.link(self.fs_path(source), final)
        except OSError:
            with self.open_output(target) as out, open(self.fs_path(source), "rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)

    def delete_dir(self, path: str) -> None:
        """Delete a directory (an S3 prefix) and everything under it; missing is not an error."""
        if self.is_s3:
            bucket, _, key = self.fs_path(path).partition("/")
            pages = self._s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key + "/")
            for page in pages:  # at most 1000 keys per page, the DeleteObjects limit
                objects = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if objects:
                    self._s3().delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
            return
        if os.path.isdir(self.fs_path(path)):
            shutil.rmtree(self.fs_path(path))

    def list(self, prefix: str, *, hidden: bool = False) -> list[str]:
        """Lake paths of all files under the directory ``prefix`` (recursive, sorted; hidden files, such as
        the temporary files of ``open_output``, only when ``hidden``)."""
        selector = pafs.FileSelector(self.fs_path(prefix), recursive=True, allow_not_found=True)
        cut = len(self._fs_root) + 1
        return sorted(
            info.path[cut:]
            for info in self.filesystem.get_file_info(selector)
            if info.type == pafs.FileType.File and (hidden or not info.base_name.startswith("."))
        )

    def remove_temporary(self, directory: str, name: str = "") -> builtins.list[str]:
        """Delete the temporary files that writes of ``directory/<name>*`` (``open_output``) killed before
        they finished left behind; returns their paths. Only local lakes have any: on S3 an unfinished
        upload never becomes an object. Not recursive."""
        if self.is_s3 or not os.path.isdir(self.fs_path(directory)):
            return []
        removed = []
        for entry in os.scandir(self.fs_path(directory)):
            if entry.name.startswith(f".{name}") and is_temporary_name(entry.name) and entry.is_file():
                self.delete(join_path(directory, entry.name))
                removed.append(join_path(directory, entry.name))
        return removed

    def read_bytes(self, path: str) -> bytes:
        with self.open_input(path) as f:
            return f.read()

    def read_json(self, path: str) -> Any:
        return json.loads(self.read_bytes(path))

    def write_json(self, path: str, value: Any) -> None:
        data = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8")
        with self.open_output(path) as f:
            f.write(data)


class _S3Upload(io.RawIOBase):
    """Writable file object over an S3 multipart upload; nothing is visible until ``commit``.

    Small objects (under one part) are sent with a single PutObject at commit time.
    """

    def __init__(self, client, bucket: str, key: str, part_size: int):
        super().__init__()
        self._client, self._bucket, self._key, self._part_size = client, bucket, key, part_size
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._size = 0

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._size

    def write(self, data) -> int:
        n = len(memoryview(data).cast("B"))
        self._buffer += data
        self._size += n
        if len(self._buffer) >= self._part_size:
            self._upload_part()
        return n

    def _upload_part(self) -> None:
        if self._upload_id is None:
            self._upload_id = self._client.create_multipart_upload(Bucket=self._bucket, Key=self._key)["UploadId"]
        number = len(self._parts) + 1
        response = self._client.upload_part(
            Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, PartNumber=number, Body=bytes(self._buffer)
        )
        self._parts.append({"ETag": response["ETag"], "PartNumber": number})
        self._buffer = bytearray()

    def commit(self) -> None:
        if self._upload_id is None:
            self._client.put_object(Bucket=self._bucket, Key=self._key, Body=bytes(self._buffer))
        else:
            if self._buffer:
                self._upload_part()
            self._client.complete_multipart_upload(
                Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
            )
        self._buffer = bytearray()
        super().close()

    def abort(self) -> None:
        self._buffer = bytearray()
        if self._upload_id is not None:
            try:
                self._client.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=self._upload_id)
            except Exception:  # the original error matters more; S3 lifecycle rules reap leftovers
                log.warning("could not abort multipart upload of s3://%s/%s", self._bucket, self._key, exc_info=True)
        super().close()
