"""File names of the prepared model folders (the same for real and tiny models)."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from pathlib import Path

SAM_CONFIG_FILE = "sam_config.json"
#: SAM weights: the official checkpoints are ``torch.save``-d state dicts (.pth, loaded with
#: ``weights_only``); the models this project creates or trains are stored as safetensors.
SAM_WEIGHTS_FILE = "sam_checkpoint.pth"
SAM_SAFETENSORS_FILE = "sam_model.safetensors"
CLIP_CONFIG_FILE = "open_clip_config.json"
CLIP_WEIGHTS_FILE = "open_clip_model.safetensors"
#: Written last into each prepared folder: where the weights came from.
MARKER_FILE = "prepared.json"


def write_marker(out_dir: str | Path, info: dict) -> None:
    Path(out_dir, MARKER_FILE).write_text(json.dumps(info, indent=2, sort_keys=True))


@contextlib.contextmanager
def atomic_model_dir(out_dir: str | Path):
    """A temporary sibling folder, renamed to ``out_dir`` when the block succeeds, so that an
    interrupted download or training never leaves a folder that looks complete."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        yield work
        if out_dir.exists():
            shutil.rmtree(out_dir)
        work.rename(out_dir)
    finally:
        if work.exists():
            shutil.rmtree(work)
