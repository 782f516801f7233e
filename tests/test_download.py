"""``t2v_core.download.download_file`` against a real HTTP server on 127.0.0.1.

The server (conftest's ``http_server``, a ``ThreadingHTTPServer`` in a thread on a free port)
serves an in-memory dict of path -> bytes, here PNGs from the shared LAMP benchmark when present,
else deterministic random bytes, always bigger than the 1 MiB download chunk. It answers
``Range: bytes=N-`` with 206, logs every request as ``(path, Range header, status)``, and can
misbehave on demand: ``drops`` (answers with the full Content-Length but sends only half, then
closes), ``ignore_range`` (always 200 with the whole file) and ``status`` (fails every request).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np
import pytest
from conftest import SHARED_DATA

from t2v_core.download import CHUNK, ChecksumError, DownloadError, download_file

FAST = {"backoff": 0.01, "progress": False, "timeout": 10.0}


@lru_cache(maxsize=1)
def payloads() -> dict[str, bytes]:
    """URL path -> content: up to three shared PNGs over 1 MiB, else 3 MB of seeded bytes."""
    pngs = sorted(SHARED_DATA.glob("lamp_benchmark/*/*.png"), key=lambda p: (-p.stat().st_size, p))
    files = {f"/files/{p.parent.name}_{i}.png": p.read_bytes()
             for i, p in enumerate(pngs[:3]) if p.stat().st_size > CHUNK}
    if not files:
        files = {"/files/random.bin": np.random.default_rng(0).bytes(3_000_000)}
    return files


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def server(http_server):
    http_server.files.update(payloads())
    return http_server


@pytest.fixture
def item():
    """The biggest served file: (path, bytes)."""
    return max(payloads().items(), key=lambda kv: len(kv[1]))


def leftovers(dest):
    return sorted(p.name for p in dest.parent.iterdir())


def test_payloads_are_bigger_than_one_chunk():
    assert payloads() and all(len(data) > CHUNK for data in payloads().values())


def test_success_then_cached_without_request(server, tmp_path):
    for path, data in payloads().items():
        dest = tmp_path / "sub" / path.rsplit("/", 1)[1]
        assert download_file(server.url(path), dest, sha256=sha(data), **FAST) == dest
        assert dest.read_bytes() == data
    assert leftovers(dest) == sorted(p.rsplit("/", 1)[1] for p in payloads())  # no .part
    assert server.log == [(p, None, 200) for p in payloads()]
    server.log.clear()
    download_file(server.url(path), dest, sha256=sha(data), **FAST)
    assert server.log == []


def test_checksum_mismatch_deletes_everything(server, tmp_path, item):
    path, data = item
    dest, wrong = tmp_path / "x.png", "0" * 64
    with pytest.raises(ChecksumError) as caught:
        download_file(server.url(path), dest, sha256=wrong, **FAST)
    message = str(caught.value)
    assert str(dest) in message and wrong in message and sha(data) in message
    assert leftovers(dest) == []


def test_resumes_with_range_after_drop(server, tmp_path, item):
    path, data = item
    server.drops = 1
    dest = download_file(server.url(path), tmp_path / "x.png", sha256=sha(data), **FAST)
    assert dest.read_bytes() == data
    half = len(data) // 2
    assert server.log == [(path, None, 200), (path, f"bytes={half}-", 206)]
    assert leftovers(dest) == ["x.png"]


def test_restarts_when_server_ignores_range(server, tmp_path, item):
    path, data = item
    server.drops, server.ignore_range = 1, True
    dest = download_file(server.url(path), tmp_path / "x.png", **FAST)
    assert dest.read_bytes() == data  # no duplicated prefix
    assert server.log == [(path, None, 200), (path, f"bytes={len(data) // 2}-", 200)]


def test_stale_part_longer_than_file_is_discarded(server, tmp_path, item):
    path, data = item
    dest = tmp_path / "x.png"
    (tmp_path / "x.png.part").write_bytes(data + b"stale tail")
    download_file(server.url(path), dest, **FAST)
    assert dest.read_bytes() == data
    assert leftovers(dest) == ["x.png"]


def test_404_fails_at_once_with_url(server, tmp_path):
    url = server.url("/files/missing.png")
    with pytest.raises(DownloadError, match="404") as caught:
        download_file(url, tmp_path / "missing.png", retries=4, **FAST)
    assert url in str(caught.value)
    assert server.log == [("/files/missing.png", None, 404)]
    assert leftovers(tmp_path / "missing.png") == []


@pytest.mark.parametrize("status", [400, 401, 403, 410])
def test_other_permanent_client_errors_are_not_retried(server, tmp_path, item, status):
    server.status = status
    with pytest.raises(DownloadError, match=f"HTTP {status} .*not retried"):
        download_file(server.url(item[0]), tmp_path / "x.png", retries=4, **FAST)
    assert len(server.log) == 1


@pytest.mark.parametrize("failure", ["503", "429", "always_drops"])
def test_gives_up_after_exactly_retries(server, tmp_path, item, failure):
    path, data = item
    if failure in ("503", "429"):  # server trouble, rate limit: worth retrying
        server.status = int(failure)
    else:
        server.drops = 10**6
    url, retries = server.url(path), 3
    with pytest.raises(DownloadError) as caught:
        download_file(url, tmp_path / "x.png", retries=retries, **FAST)
    assert not isinstance(caught.value, ChecksumError)
    assert url in str(caught.value) and f"after {retries} attempts" in str(caught.value)
    assert len(server.log) == retries
    assert leftovers(tmp_path / "x.png") == []


def test_existing_dest_with_wrong_checksum_is_replaced(server, tmp_path, item):
    path, data = item
    dest = tmp_path / "x.png"
    dest.write_bytes(b"an older, different file")
    assert download_file(server.url(path), dest, sha256=sha(data), **FAST) == dest
    assert dest.read_bytes() == data
    assert server.log == [(path, None, 200)]
    assert leftovers(dest) == ["x.png"]


@pytest.mark.parametrize("length", [8, 40, 64])
def test_sha256_prefix_is_accepted_and_keeps_the_file(server, tmp_path, item, length):
    path, data = item
    prefix = sha(data)[:length]
    dest = download_file(server.url(path), tmp_path / "x.png", sha256=prefix, **FAST)
    assert dest.read_bytes() == data
    server.log.clear()
    download_file(server.url(path), dest, sha256=prefix.upper(), **FAST)  # hex digits in either case
    assert server.log == []


def test_wrong_sha256_prefix_is_a_checksum_mismatch(server, tmp_path, item):
    path, data = item
    right = sha(data)[:8]
    wrong = ("1" if right[0] == "0" else "0") + right[1:]
    dest = tmp_path / "x.png"
    with pytest.raises(ChecksumError, match="checksum mismatch") as caught:
        download_file(server.url(path), dest, sha256=wrong, **FAST)
    assert wrong in str(caught.value) and sha(data) in str(caught.value)
    assert leftovers(dest) == []


@pytest.mark.parametrize("malformed", ["22a6c22", "", "22a6c22g", "0" * 65])
def test_malformed_sha256_is_refused_before_any_request(server, tmp_path, item, malformed):
    dest = tmp_path / "x.png"
    with pytest.raises(ValueError, match="8 to 64 hex characters"):
        download_file(server.url(item[0]), dest, sha256=malformed, **FAST)
    assert server.log == [] and leftovers(dest) == []
