"""Clients' files: fetched from the platform that holds them, kept in the media bucket, read back
to forward them to staff.

The bucket (template.yaml ``MediaBucket``) holds ``media/<lead id>/<message id>/<n>.<ext>``;
its lifecycle rule deletes objects after ``MediaRetentionDays``, and `leadflow forget` deletes a
lead's prefix at once. Bytes never travel in a queue message: messages carry ``MediaRef``s, leads
carry ``Attachment``s, both name the file, neither holds it.

A download is capped (``max_bytes``): a file over the cap is never read to its end, and the owner
is told to look in the client's messenger instead.
"""

from __future__ import annotations

import mimetypes
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from leadflow.adapters.channels.base import SendError
from leadflow.domain.models import MediaRef

# A file's bytes are held in memory between download and upload (512 MB functions): a cap that
# also keeps a batch's downloads inside its time. Telegram's own getFile limit is 20 MB.
MAX_MEDIA_BYTES = 20 * 1024 * 1024
DOWNLOAD_TIMEOUT = (3.0, 15.0)  # connect, read (between chunks)

_EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/gif": "gif",
    "audio/ogg": "ogg",
    "audio/opus": "ogg",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/mp4": "m4a",
    "audio/aac": "aac",
    "audio/amr": "amr",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "video/mp4": "mp4",
    "video/3gpp": "3gp",
    "video/quicktime": "mov",
    "application/pdf": "pdf",
    "text/plain": "txt",
}


class MediaTooBig(Exception):
    """The file is larger than we fetch (or the platform lets bots fetch)."""


class MediaUnavailable(Exception):
    """The platform would not give the file (expired link, refused token, no such file…)."""


class MediaNotStored(SendError):
    """A file the lead names is not in the bucket (yet): score uploads it right after naming it on
    the lead and forwards it itself when it then finds the card. Released, not sent from here."""

    def __init__(self, reason: str):
        super().__init__(reason, retryable=True)


@dataclass(frozen=True)
class Blob:
    data: bytes
    mime_type: str | None = None
    file_name: str | None = None


class Fetcher(Protocol):
    """Gets one file of a client's message from its platform, within ``within_s`` seconds when
    given (the batch's time: a download that would outlive it is given up, not cut by the runtime)."""

    def fetch(self, ref: MediaRef, max_bytes: int, *, within_s: float | None = None) -> Blob: ...


def extension(mime_type: str | None, file_name: str | None = None, kind: str = "") -> str:
    """The object's extension: from the MIME type (``audio/ogg; codecs=opus`` → ``ogg``), else the
    file's name, else the kind (a Telegram voice note is always OGG/Opus)."""
    base = (mime_type or "").split(";")[0].strip().lower()
    if base in _EXTENSIONS:
        return _EXTENSIONS[base]
    if file_name and "." in file_name:
        suffix = file_name.rsplit(".", 1)[1].lower()
        if suffix.isalnum() and len(suffix) <= 5:
            return "ogg" if suffix == "oga" else suffix
    guessed = mimetypes.guess_extension(base) if base else None
    if guessed:
        return guessed.lstrip(".")
    return {"voice": "ogg", "photo": "jpg", "video": "mp4", "video_note": "mp4"}.get(kind, "bin")


def mime_of(ext: str, given: str | None = None) -> str:
    if given:
        return given.split(";")[0].strip()
    for mime, known in _EXTENSIONS.items():
        if known == ext:
            return mime
    return mimetypes.guess_type(f"file.{ext}")[0] or "application/octet-stream"


def download(
    session: Any,
    url: str,
    *,
    max_bytes: int,
    what: str,
    headers: dict[str, str] | None = None,
    timeout: tuple[float, float] = DOWNLOAD_TIMEOUT,
    within_s: float | None = None,
) -> Blob:
    """GET a file, reading at most ``max_bytes`` of it, in at most ``within_s`` seconds when given
    (a slower download is given up: MediaUnavailable). Error texts never hold the URL (a token or
    a signature may live in it)."""
    import requests

    if urlsplit(url).scheme not in ("https", "http"):
        raise MediaUnavailable(f"{what}: not an http(s) link")
    deadline = None if within_s is None else time.monotonic() + max(within_s, 0.0)
    if deadline is not None:
        timeout = (min(timeout[0], max(within_s or 0.0, 0.1)), min(timeout[1], max(within_s or 0.0, 0.1)))
    try:
        with session.get(url, headers=headers or {}, timeout=timeout, stream=True) as response:
            if response.status_code >= 400:
                raise MediaUnavailable(f"{what}: HTTP {response.status_code}")
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise MediaTooBig(f"{what}: {int(declared)} bytes")
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_content(chunk_size=256 * 1024):
                if deadline is not None and time.monotonic() > deadline:
                    raise MediaUnavailable(f"{what}: too slow for the time left")
                size += len(chunk)
                if size > max_bytes:
                    raise MediaTooBig(f"{what}: more than {max_bytes} bytes")
                chunks.append(chunk)
            mime = (response.headers.get("Content-Type") or "").split(";")[0].strip() or None
            return Blob(b"".join(chunks), mime)
    except requests.RequestException as exc:
        raise MediaUnavailable(f"{what}: {type(exc).__name__}") from None


class UrlFetcher:
    """Files behind a direct link: Instagram's CDN, VK's photo, document and voice links."""

    def __init__(self, session: Any | None = None, *, what: str = "media"):
        if session is None:
            import requests

            session = requests.Session()
        self._session = session
        self._what = what

    def fetch(self, ref: MediaRef, max_bytes: int, *, within_s: float | None = None) -> Blob:
        if not ref.url:
            raise MediaUnavailable(f"{self._what}: no link to the file")
        if ref.size and ref.size > max_bytes:
            raise MediaTooBig(f"{self._what}: {ref.size} bytes")
        blob = download(self._session, ref.url, max_bytes=max_bytes, what=self._what, within_s=within_s)
        return Blob(blob.data, ref.mime_type or blob.mime_type, ref.file_name)


class MediaBucket:
    """The S3 bucket of clients' files. ``s3`` gives the client when it is first needed: most
    messages carry no file, and a function that never touches the bucket never builds one."""

    def __init__(self, s3: Callable[[], Any], name: str):
        self._s3 = s3
        self.name = name

    def put(self, key: str, data: bytes, mime_type: str) -> None:
        self._s3().put_object(Bucket=self.name, Key=key, Body=data, ContentType=mime_type)

    def get(self, key: str) -> bytes | None:
        """The object's bytes; None when there is no such object (not stored yet, or expired)."""
        from botocore.exceptions import ClientError

        try:
            answer = self._s3().get_object(Bucket=self.name, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        return bytes(answer["Body"].read())

    def delete_prefix(self, prefix: str) -> int:
        """Every object under ``prefix`` deleted; how many there were."""
        s3 = self._s3()
        deleted = 0
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.name, "Prefix": prefix}
            if token:
                kwargs["ContinuationToken"] = token
            page = s3.list_objects_v2(**kwargs)
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=self.name, Delete={"Objects": keys, "Quiet": True})
                deleted += len(keys)
            if not page.get("IsTruncated"):
                return deleted
            token = page.get("NextContinuationToken")
