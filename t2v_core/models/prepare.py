"""The ``prepare_models`` stage: one folder per model, downloaded (paper), copied from the toy
world's trained models (demo) or created with random weights (tests)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from .layout import (
    CLIP_CONFIG_FILE, CLIP_WEIGHTS_FILE, SAM_CONFIG_FILE, SAM_WEIGHTS_FILE, MARKER_FILE, atomic_model_dir,
    write_marker,
)
from .tiny import create_tiny_base_model, create_tiny_clip, create_tiny_sam

MODEL_KINDS = ("base", "sam", "clip")

#: The files of a diffusers SD-1.x repository that the pipeline needs (fp32 safetensors).
BASE_MODEL_FILES = [
    "model_index.json", "scheduler/scheduler_config.json",
    "text_encoder/config.json", "text_encoder/model.safetensors",
    "tokenizer/*", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
    "vae/config.json", "vae/diffusion_pytorch_model.safetensors",
]


def download_base_model(out_dir: Path, repo_id: str, revision: str) -> None:
    from huggingface_hub import snapshot_download

    snapshot_download(repo_id, revision=revision, local_dir=out_dir, allow_patterns=BASE_MODEL_FILES)
    write_marker(out_dir, {"kind": "download", "repo_id": repo_id, "revision": revision})


def download_sam(out_dir: Path, model_type: str, url: str, sha256: str | None) -> None:
    from ..download import download_file

    download_file(url, out_dir / SAM_WEIGHTS_FILE, sha256=sha256)
    (out_dir / SAM_CONFIG_FILE).write_text(json.dumps({"model_type": model_type}, indent=2))
    write_marker(out_dir, {"kind": "download", "url": url, "sha256": sha256})


def download_clip(out_dir: Path, model_name: str, pretrained: str) -> None:
    """Fetch open_clip weights by tag, then store them in the ``local-dir:`` layout."""
    import open_clip
    from safetensors.torch import save_file

    with tempfile.TemporaryDirectory() as cache:
        model = open_clip.create_model(model_name, pretrained=pretrained, cache_dir=cache)
    pretrained_cfg = open_clip.get_pretrained_cfg(model_name, pretrained)
    model_cfg = open_clip.get_model_config(model_name)
    if pretrained_cfg.get("quick_gelu"):
        model_cfg = {**model_cfg, "quick_gelu": True}
    size = model.visual.image_size
    preprocess = {
        "size": list(size) if isinstance(size, tuple) else size,
        "mean": list(pretrained_cfg.get("mean", open_clip.OPENAI_DATASET_MEAN)),
        "std": list(pretrained_cfg.get("std", open_clip.OPENAI_DATASET_STD)),
    }
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, out_dir / CLIP_WEIGHTS_FILE)
    (out_dir / CLIP_CONFIG_FILE).write_text(
        json.dumps({"model_cfg": model_cfg, "preprocess_cfg": preprocess}, indent=2)
    )
    write_marker(out_dir, {"kind": "download", "model_name": model_name, "pretrained": pretrained})


def copy_toy_model(kind: str, out_dir: Path, toy_dir=None) -> None:
    """The toy world's trained ``kind`` model (shipped in the package, or from ``toy_dir``)."""
    from ..toy import toy_model_dir

    source = toy_model_dir(kind, toy_dir)
    marker = source / MARKER_FILE
    if not marker.exists():
        raise FileNotFoundError(f"{source}: no trained toy {kind} model ({MARKER_FILE} missing); "
                                f"train them with `make toy-models`")
    shutil.copytree(source, out_dir, dirs_exist_ok=True)


def prepare_model(kind: str, out_dir: str | Path, models_config: dict) -> None:
    """Create or download the model ``kind`` (base, sam or clip) into ``out_dir``.

    Built in a temporary sibling folder and renamed when complete, so an interrupted
    download never leaves a folder that looks prepared.
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {MODEL_KINDS}")
    with atomic_model_dir(out_dir) as work:
        if models_config["source"] == "toy":
            copy_toy_model(kind, work, models_config.get("toy_dir"))
        elif models_config["source"] == "tiny":
            seed = models_config["seed"]
            {"base": create_tiny_base_model, "sam": create_tiny_sam, "clip": create_tiny_clip}[kind](work, seed)
        elif kind == "base":
            download_base_model(work, models_config["base"]["repo_id"], models_config["base"]["revision"])
        elif kind == "sam":
            sam = models_config["sam"]
            download_sam(work, sam["model_type"], sam["url"], sam["sha256"])
        else:
            clip = models_config["clip"]
            download_clip(work, clip["model_name"], clip["pretrained"])
