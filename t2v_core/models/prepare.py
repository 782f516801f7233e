"""The ``prepare_models`` stage: one folder per model kind, from the config's model source:
downloaded (``download``, the paper), created with random weights (``tiny``, the tests), or
from a source that a plugin registers (:func:`register_model_source`; the demo's toy world
copies the models it trained)."""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..plugins import Registry
from ..atomic import atomic_dir
from .layout import (
    AESTHETIC_CONFIG_FILE, AESTHETIC_WEIGHTS_FILE, CLIP_CONFIG_FILE, CLIP_WEIGHTS_FILE, DINO_CONFIG_FILE,
    DINO_WEIGHTS_FILE, RAFT_CONFIG_FILE, RAFT_WEIGHTS_FILE, SAM_CONFIG_FILE, SAM_WEIGHTS_FILE, write_marker,
)

log = logging.getLogger(__name__)
#: Written into each prepared folder: the experiment that prepared it, and from which settings.
PREPARED_FOR_FILE = "prepared_for.json"
#: The models a run can prepare; a method or an evaluator names those it loads.
MODEL_KINDS = ("base", "sam", "clip", "motion_adapter", "dino", "raft", "aesthetic")


@dataclass(frozen=True)
class ModelSource:
    """Where the models of ``models.source`` come from.

    ``prepare(kind, work_dir, models_config)`` fills the empty folder ``work_dir`` with the model
    ``kind`` (one of MODEL_KINDS); ``settings(kind, models_config)`` is what of the config that depends on (the
    rule's params: editing it prepares that model again); ``input_folder(kind, models_config)``
    a folder it copies, if any (the rule's input: a changed folder is copied again).
    """

    name: str
    prepare: Callable[[str, Path, dict], None]
    settings: Callable[[str, dict], dict]
    input_folder: Callable[[str, dict], Path | None] = lambda kind, models_config: None
    #: Lines for the report: which models these are (``describe(models_config, kinds)``, the
    #: kinds that the run uses).
    describe: Callable[[dict, list], list[str]] = lambda models_config, kinds: []
    #: Whether ``models_config`` gives the poster's models (``is_posters(models_config)``): only
    #: then are the poster's numbers drawn beside ours in the figures.
    is_posters: Callable[[dict], bool] = lambda models_config: False


MODEL_SOURCES = Registry("model source")


def register_model_source(source: ModelSource) -> None:
    MODEL_SOURCES.register(source)


def model_source_names() -> list[str]:
    return MODEL_SOURCES.names()


def get_model_source(name: str) -> ModelSource:
    return MODEL_SOURCES.get(name)


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


#: DINO's ViT-B/16 (the backbone of VBench's subject consistency) as timm ``VisionTransformer``
#: kwargs, whose parameter names are those of DINO's checkpoint, and the image size it was
#: trained at (its position embeddings').
DINO_CONFIG = dict(patch_size=16, embed_dim=768, depth=12, num_heads=12, num_classes=0, image_size=224)
#: LAION's aesthetic head reads CLIP ViT-L/14 image embeddings, 768 wide.
AESTHETIC_CONFIG = {"in_features": 768}


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


def prepare_model(kind: str, out_dir: str | Path, models_config: dict, experiment: str | None = None) -> None:
    """Create or download the model ``kind`` (one of MODEL_KINDS) into ``out_dir``, from
    ``models_config`` (the model source's settings of ``kind``); note in the folder which
    experiment prepared it from which settings (see :func:`models_dir_conflicts`).

    Built in a temporary sibling folder and renamed when complete, so an interrupted
    download never leaves a folder that looks prepared.
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {MODEL_KINDS}")
    source = get_model_source(models_config["source"])
    if models_config["source"] == "download":
        log.info("%s: %s", kind, download_pin(kind, models_config))
    with atomic_dir(out_dir) as work:
        source.prepare(kind, work, models_config)
        (work / PREPARED_FOR_FILE).write_text(json.dumps({"experiment": experiment, "settings": models_config},
                                                         indent=2, sort_keys=True))


def models_dir_conflicts(models_dir: str | Path, experiment: str, settings: dict[str, dict]) -> list[str]:
    """The prepared folders in ``models_dir`` that another experiment made from other settings
    than ``settings`` (kind -> the model source's settings): preparing them again for this
    experiment would replace that experiment's models and invalidate its results. Folders of
    this experiment (its settings were edited) and of equal settings (shared downloads) are fine."""
    conflicts = []
    for kind, wanted in settings.items():
        record = Path(models_dir, kind, PREPARED_FOR_FILE)
        if not record.is_file():
            continue
        prepared = json.loads(record.read_text())
        if prepared["experiment"] != experiment and prepared["settings"] != json.loads(json.dumps(wanted)):
            conflicts.append(f"{record.parent} was prepared by experiment {prepared['experiment']!r} from "
                             f"{prepared['settings']}, this experiment {experiment!r} needs {wanted}")
    return conflicts


def _download(kind: str, work: Path, models_config: dict) -> None:
    if kind in ("base", "motion_adapter"):
        download = download_base_model if kind == "base" else download_motion_adapter
        download(work, models_config[kind]["repo_id"], models_config[kind]["revision"])
    elif kind == "sam":
        sam = models_config["sam"]
        download_sam(work, sam["model_type"], sam["url"], sam["sha256"])
    elif kind == "dino":
        dino = models_config["dino"]
        download_checkpoint(work, dino["url"], dino["sha256"], DINO_WEIGHTS_FILE, DINO_CONFIG_FILE, DINO_CONFIG)
    elif kind == "raft":
        raft = models_config["raft"]
        download_checkpoint(work, raft["url"], raft["sha256"], RAFT_WEIGHTS_FILE, RAFT_CONFIG_FILE,
                            {"variant": raft["variant"]})
    elif kind == "aesthetic":
        aesthetic = models_config["aesthetic"]
        download_checkpoint(work, aesthetic["url"], aesthetic["sha256"], AESTHETIC_WEIGHTS_FILE,
                            AESTHETIC_CONFIG_FILE, AESTHETIC_CONFIG)
    else:
        clip = models_config["clip"]
        download_clip(work, clip["model_name"], clip["pretrained"])


def _create_tiny(kind: str, work: Path, models_config: dict) -> None:
    from .tiny import (
        create_tiny_aesthetic, create_tiny_base_model, create_tiny_clip, create_tiny_dino, create_tiny_motion_adapter,
        create_tiny_raft, create_tiny_sam,
    )

    create = {"base": create_tiny_base_model, "sam": create_tiny_sam, "clip": create_tiny_clip,
              "motion_adapter": create_tiny_motion_adapter, "dino": create_tiny_dino, "raft": create_tiny_raft,
              "aesthetic": create_tiny_aesthetic}
    create[kind](work, models_config["seed"])


def _describe_download(models_config: dict, kinds) -> list[str]:
    clip = models_config["clip"]
    lines = [f"Base model: {models_config['base']['repo_id']} ({models_config['source']} weights)",
             f"CLIP model: {clip['model_name']}, pretrained {clip['pretrained']} (the poster does not say which CLIP)"]
    if "motion_adapter" in kinds:
        lines.append(f"Motion adapter: {models_config['motion_adapter']['repo_id']} (trained by AnimateDiff's "
                     f"authors with SD-1.5; used here with the base model above, as every method)")
    if "dino" in kinds:
        lines.append("DINO: ViT-B/16 of facebookresearch/dino (VBench's subject consistency)")
    if "raft" in kinds:
        lines.append(f"RAFT: torchvision's {models_config['raft']['variant']}, the original RAFT's weights "
                     "(VBench's dynamic degree)")
    if "aesthetic" in kinds:
        lines.append("Aesthetic predictor: LAION's linear head on CLIP ViT-L/14 image embeddings "
                     "(VBench's aesthetic quality)")
    return lines


def _is_commit(revision: str) -> bool:
    return len(revision) == 40 and all(c in "0123456789abcdef" for c in revision)


def download_pin(kind: str, models_config: dict) -> str:
    """What the download of ``kind`` is pinned to, in words: the commit of a Hugging Face
    repository, or the sha256 a file is checked against; or, said plainly, that it is not."""
    settings = models_config[kind]
    if kind in ("base", "motion_adapter"):
        where = f"{settings['repo_id']} at revision {settings['revision']}"
        if _is_commit(settings["revision"]):
            return f"{where} (a commit: its files are fixed)"
        return f"{where}, NOT PINNED: a branch or tag, whose files can change (give a commit to pin it)"
    if kind == "clip":
        import open_clip

        source = open_clip.get_pretrained_cfg(settings["model_name"], settings["pretrained"])
        if source.get("hf_hub"):
            where = f"the Hugging Face repository {source['hf_hub'].rstrip('/')}"
        else:
            where = source.get("url") or "open_clip's source"
        return (f"open_clip's {settings['model_name']} / {settings['pretrained']} weights from {where}, "
                f"NOT PINNED here: open_clip {open_clip.__version__} chooses the file and its revision")
    digest = settings["sha256"]
    if not digest:
        return f"{settings['url']}, NOT PINNED: no sha256 (prepared.json records the one downloaded)"
    if len(digest) < 64:
        return f"{settings['url']}, pinned only to the sha256 prefix {digest} ({4 * len(digest)} of 256 bits)"
    return f"{settings['url']}, sha256 {digest}"


def _describe_pins(models_config: dict, kinds) -> list[str]:
    return [f"Download of {kind}: {download_pin(kind, models_config)}" for kind in kinds if kind in MODEL_KINDS]


#: The poster's base model (the design card: Stable Diffusion v1.4).
POSTER_BASE_MODEL = "CompVis/stable-diffusion-v1-4"

register_model_source(ModelSource(
    "download", _download, settings=lambda kind, models_config: {"source": "download", kind: models_config[kind]},
    describe=lambda models_config, kinds: _describe_download(models_config, kinds) + _describe_pins(models_config,
                                                                                                   kinds),
    is_posters=lambda models_config: models_config["base"]["repo_id"] == POSTER_BASE_MODEL,
))
register_model_source(ModelSource(
    "tiny", _create_tiny, settings=lambda kind, models_config: {"source": "tiny", "seed": models_config["seed"]},
    describe=lambda models_config, kinds: _describe_download(models_config, kinds) + [
        "With tiny random models the numbers only show that the pipeline runs."],
))
