"""Shared fixtures: tiny random-weight models of the real classes, made once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
WORKFLOW_FILES = ["Snakefile", "rules", "workflow_scripts", "config", "report", "profiles", "environment.yml"]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from t2v_core.models.prepare import prepare_model

    root = tmp_path_factory.mktemp("models")
    for kind in ("base", "sam", "clip"):
        prepare_model(kind, root / kind, {"source": "tiny", "seed": 0})
    return root


@pytest.fixture
def base_parts(tiny_model_dir):
    from t2v_core.models.loading import load_base_components

    return load_base_components(tiny_model_dir / "base")


@pytest.fixture
def workflow_copy(tmp_path) -> Path:
    """The workflow's files in a temporary working directory (results are written there)."""
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name)
        else:
            shutil.copy2(source, tmp_path / name)
    return tmp_path


def shared_data(*parts) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared test data {path} is absent")
    return path
