"""File names of the prepared model folders (the same for real and tiny models)."""

from __future__ import annotations

import json
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

