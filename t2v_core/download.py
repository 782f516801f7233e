"""HTTP(S) downloads with checksums, retries with backoff, resume, and atomic writes.

A download goes to ``<name>.part`` beside the destination and is renamed only once it is
complete and its sha256 matches; a dropped connection resumes from the partial file with an
HTTP Range request (or restarts when the server ignores the range).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from pathlib import Path

import requests
import urllib3
from tqdm.auto import tqdm

log = logging.getLogger(__name__)
CHUNK = 1 << 20
#: The client errors worth another attempt (timeout, rate limit); every other 4xx is final.
RETRIED_CLIENT_ERRORS = (408, 429)


class DownloadError(RuntimeError):
    """A download that failed for good (after retries, or on an error that retrying cannot fix)."""


class ChecksumError(DownloadError):
    pass


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _blocks(response: requests.Response):
    """The body as it arrives, so that a dropped connection loses no byte already received
    (urllib3 2's ``read(amt)``, behind ``iter_content``, discards a partial block)."""
    if not hasattr(response.raw, "read1"):  # urllib3 < 2.3: read(amt) keeps partial blocks
        yield from response.iter_content(CHUNK)
        return
    try:
        while block := response.raw.read1(CHUNK, decode_content=True):
            yield block
    except urllib3.exceptions.HTTPError as error:  # IncompleteRead, ReadTimeoutError, ...
        raise requests.ConnectionError(f"{response.url}: {error}") from error


def _fetch_once(url: str, part: Path, timeout: float, progress: bool) -> None:
    offset = part.stat().st_size if part.exists() else 0
    # identity: byte offsets must count the bytes on the wire, not a decompressed stream
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    with requests.get(url, stream=True, timeout=timeout, headers=headers) as response:
        if response.status_code == 416:  # nothing past offset: complete, or a stale longer .part
            if response.headers.get("Content-Range", "") == f"bytes */{offset}":
                return
            part.unlink()
            return _fetch_once(url, part, timeout, progress)
        if 400 <= response.status_code < 500 and response.status_code not in RETRIED_CLIENT_ERRORS:
            # a wrong URL, a missing file, no access: asking again gives the same answer
            raise DownloadError(f"{url}: HTTP {response.status_code} {response.reason} (not retried)")
        response.raise_for_status()
        if offset and response.status_code != 206:
            offset = 0  # the server ignored the range: restart from the beginning
        total = response.headers.get("Content-Length")
        total = int(total) + offset if total is not None else None
        mode = "ab" if offset else "wb"
        with open(part, mode) as handle, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True,
            desc=Path(part).name[: -len(".part")], disable=not progress,
        ) as bar:
            for block in _blocks(response):
                handle.write(block)
                bar.update(len(block))
        if total is not None and part.stat().st_size < total:
            raise requests.ConnectionError(
                f"{url}: connection closed after {part.stat().st_size} of {total} bytes"
            )


def download_file(
    url: str,
    dest: str | Path,
    sha256: str | None = None,
    retries: int = 5,
    backoff: float = 1.0,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest``; verify ``sha256`` when given. Returns ``dest``.

    ``sha256`` is the full 64-hex digest, or a prefix of at least 8 hex characters that the
    file's digest must start with: the short hashes that some publishers put in their file
    names (torchvision checks its weight files so). A shorter prefix is a ValueError, raised
    before any network access: it would let almost any file through.
    An existing ``dest`` with the right checksum is kept (no network access).
    """
    if sha256 is not None:
        if not re.fullmatch(r"[0-9a-fA-F]{8,64}", sha256):
            raise ValueError(f"sha256 {sha256!r} for {url}: expected 8 to 64 hex characters (a digest or its prefix)")
        sha256 = sha256.lower()
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() and (sha256 is None or sha256_of(dest).startswith(sha256)):
        return dest
    part = dest.with_name(dest.name + ".part")
    for attempt in range(1, retries + 1):
        try:
            _fetch_once(url, part, timeout, progress)
            break
        except DownloadError:
            part.unlink(missing_ok=True)
            raise
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,  # dropped body
                requests.Timeout, requests.HTTPError) as error:
            if attempt == retries:
                part.unlink(missing_ok=True)
                raise DownloadError(f"{url}: failed after {retries} attempts: {error}") from error
            wait = backoff * 2 ** (attempt - 1)
            log.warning("%s: attempt %d failed (%s); retrying in %.1fs", url, attempt, error, wait)
            time.sleep(wait)
    if sha256 is not None:
        actual = sha256_of(part)
        if not actual.startswith(sha256):
            part.unlink(missing_ok=True)
            raise ChecksumError(
                f"{dest}: checksum mismatch for {url}: expected sha256 {sha256}, got {actual}; "
                "the file was deleted"
            )
    os.replace(part, dest)
    return dest
