"""How the built-in model kinds are downloaded (``models.source: download``): a Hugging Face
repository's files, a single checkpoint file checked against its sha256, open_clip weights by
tag. Each writes the folder's marker last (layout.MARKER_FILE: where the weights came from)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from .layout import CLIP_CONFIG_FILE, CLIP_WEIGHTS_FILE, SAM_CONFIG_FILE, SAM_WEIGHTS_FILE, write_marker

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


#: The files of a diffusers ``MotionAdapter`` repository (fp32 safetensors).
MOTION_ADAPTER_FILES = ["config.json", "diffusion_pytorch_model.safetensors"]


def download_motion_adapter(out_dir: Path, repo_id: str, revision: str) -> None:
    from huggingface_hub import snapshot_download

    snapshot_download(repo_id, revision=revision, local_dir=out_dir, allow_patterns=MOTION_ADAPTER_FILES)
    write_marker(out_dir, {"kind": "download", "repo_id": repo_id, "revision": revision})


def download_sam(out_dir: Path, model_type: str, url: str, sha256: str | None) -> None:
    from ..download import download_file

    download_file(url, out_dir / SAM_WEIGHTS_FILE, sha256=sha256)
    (out_dir / SAM_CONFIG_FILE).write_text(json.dumps({"model_type": model_type}, indent=2))
    write_marker(out_dir, {"kind": "download", "url": url, "sha256": sha256})


def download_checkpoint(out_dir: Path, url: str, sha256: str | None, weights_file: str, config_file: str,
                        config: dict) -> None:
    """A single-file ``torch.save``-d state dict and the config that says what it is for.

    The marker records the sha256 of the file actually downloaded, whether or not one was
    expected, so that an unpinned download can be pinned afterwards."""
    from ..download import download_file, sha256_of

    weights = download_file(url, out_dir / weights_file, sha256=sha256)
    (out_dir / config_file).write_text(json.dumps(config, indent=2))
    write_marker(out_dir, {"kind": "download", "url": url, "sha256": sha256_of(weights)})


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


def is_commit(revision: str) -> bool:
    return len(revision) == 40 and all(c in "0123456789abcdef" for c in revision)


def repository_pin(settings: dict) -> str:
    """What a Hugging Face download (``repo_id``, ``revision``) is pinned to, in words."""
    where = f"{settings['repo_id']} at revision {settings['revision']}"
    if is_commit(settings["revision"]):
        return f"{where} (a commit: its files are fixed)"
    return f"{where}, NOT PINNED: a branch or tag, whose files can change (give a commit to pin it)"


def file_pin(settings: dict) -> str:
    """What a single-file download (``url``, ``sha256``: full, a prefix or null) is pinned to."""
    digest = settings["sha256"]
    if not digest:
        return f"{settings['url']}, NOT PINNED: no sha256 (prepared.json records the one downloaded)"
    if len(digest) < 64:
        return f"{settings['url']}, pinned only to the sha256 prefix {digest} ({4 * len(digest)} of 256 bits)"
    return f"{settings['url']}, sha256 {digest}"


def open_clip_pin(settings: dict) -> str:
    """open_clip weights by tag: open_clip, not this config, chooses the file."""
    import open_clip

    source = open_clip.get_pretrained_cfg(settings["model_name"], settings["pretrained"])
    if source.get("hf_hub"):
        where = f"the Hugging Face repository {source['hf_hub'].rstrip('/')}"
    else:
        where = source.get("url") or "open_clip's source"
    return (f"open_clip's {settings['model_name']} / {settings['pretrained']} weights from {where}, "
            f"NOT PINNED here: open_clip {open_clip.__version__} chooses the file and its revision")
