"""Shared fixtures: tiny random-weight models of the real classes, made once per session."""

from __future__ import annotations

import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
WORKFLOW_FILES = ["Snakefile", "rules", "workflow_scripts", "config", "report", "profiles", "environment.yml"]


def pytest_collection_modifyitems(config, items):
    """The test modules (and classes) with end-to-end runs first, in their order, the others
    after: `make test` hands modules and classes to its workers (pytest-xdist's loadscope) in
    this order, and the longest ones started last would leave one core idle at the end."""
    def scope(item):
        return item.nodeid.rsplit("::", 1)[0]

    slow = {scope(item) for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: scope(item) not in slow)  # stable: each scope's order is kept


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from t2v_core.models.prepare import model_kind_names, prepare_model

    root = tmp_path_factory.mktemp("models")
    for kind in model_kind_names():
        prepare_model(kind, root / kind, {"source": "tiny", "seed": 0})
    return root


@pytest.fixture
def base_parts(tiny_model_dir):
    from t2v_core.models.loading import load_base_components

    return load_base_components(tiny_model_dir / "base")


def perturbed(adapter, seed: int):
    """``adapter`` with every weight moved off its initial value (an untrained one adds ~0)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in adapter.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * 0.05)
    return adapter


def copy_workflow(dest: Path) -> Path:
    """The workflow's files copied into ``dest`` (a working directory for results)."""
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, dest / name)
        else:
            shutil.copy2(source, dest / name)
    return dest


@pytest.fixture
def workflow_copy(tmp_path) -> Path:
    """The workflow's files in a temporary working directory (results are written there)."""
    return copy_workflow(tmp_path)


def shared_data(*parts) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared test data {path} is absent")
    return path


class LocalHTTPHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output quiet
        pass

    def send_response(self, code, message=None):
        self.server.log.append((self.path, self.headers.get("Range"), code))
        super().send_response(code, message)

    def do_GET(self):
        srv, body = self.server, self.server.files.get(self.path)
        if srv.status:
            return self.send_error(srv.status)
        if body is None:
            return self.send_error(404)
        start, wanted = 0, self.headers.get("Range")
        if wanted and not srv.ignore_range:
            start = int(wanted.removeprefix("bytes=").rstrip("-"))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                return self.end_headers()
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if srv.drops > 0:  # promise everything, send half, hang up (HTTP/1.0 closes after return)
            srv.drops -= 1
            payload = payload[: len(payload) // 2]
        self.wfile.write(payload)


@pytest.fixture
def http_server(monkeypatch):
    """An HTTP server on 127.0.0.1 serving ``.files`` (path -> bytes) with Range support;
    ``.log`` lists (path, Range, status); ``.drops``/``.ignore_range``/``.status`` misbehave."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), LocalHTTPHandler)
    httpd.files, httpd.log = {}, []
    httpd.drops, httpd.ignore_range, httpd.status = 0, False, None
    httpd.url = lambda path: f"http://127.0.0.1:{httpd.server_port}{path}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)
