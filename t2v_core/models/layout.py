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
#: The models of VBench's metrics, stored as SAM's are: the official ``.pth`` state dicts as
#: downloaded, or our safetensors (tiny ones); the config json says which architecture.
#: DINO: timm ``VisionTransformer`` kwargs and ``image_size``.
DINO_CONFIG_FILE = "dino_config.json"
DINO_WEIGHTS_FILE = "dino_checkpoint.pth"
DINO_SAFETENSORS_FILE = "dino_model.safetensors"
#: RAFT: torchvision's ``variant`` (raft_large, raft_small, or tiny with its ``architecture``).
RAFT_CONFIG_FILE = "raft_config.json"
RAFT_WEIGHTS_FILE = "raft_checkpoint.pth"
RAFT_SAFETENSORS_FILE = "raft_model.safetensors"
#: LAION's aesthetic head: a ``Linear(in_features, 1)`` on CLIP image embeddings.
AESTHETIC_CONFIG_FILE = "aesthetic_config.json"
AESTHETIC_WEIGHTS_FILE = "aesthetic_head.pth"
AESTHETIC_SAFETENSORS_FILE = "aesthetic_head.safetensors"
#: Written last into each prepared folder: where the weights came from.
MARKER_FILE = "prepared.json"


def write_marker(out_dir: str | Path, info: dict) -> None:
    Path(out_dir, MARKER_FILE).write_text(json.dumps(info, indent=2, sort_keys=True))

