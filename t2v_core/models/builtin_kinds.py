"""The built-in model kinds, in the order the registry lists them: the text-to-image base, SAM
(the foreground masks), CLIP (the metrics), AnimateDiff's motion adapter, and the models of
VBench's metrics (DINO, RAFT, LAION's aesthetic head). Each block's properties are those that
config/schema.yaml held before the kinds were declared here."""

from __future__ import annotations


from ..settings import properties
from .downloads import (
    download_base_model, download_checkpoint, download_clip, download_motion_adapter, download_sam, file_pin,
    open_clip_pin, repository_pin,
)
from .kinds import ModelKind
from .layout import (
    AESTHETIC_CONFIG_FILE, AESTHETIC_WEIGHTS_FILE, DINO_CONFIG_FILE, DINO_WEIGHTS_FILE, RAFT_CONFIG_FILE,
    RAFT_WEIGHTS_FILE,
)

#: DINO's ViT-B/16 (the backbone of VBench's subject consistency) as timm ``VisionTransformer``
#: kwargs, whose parameter names are those of DINO's checkpoint, and the image size it was
#: trained at (its position embeddings').
DINO_CONFIG = dict(patch_size=16, embed_dim=768, depth=12, num_heads=12, num_classes=0, image_size=224)
#: LAION's aesthetic head reads CLIP ViT-L/14 image embeddings, 768 wide.
AESTHETIC_CONFIG = {"in_features": 768}


def _tiny():
    """:mod:`.tiny`, imported only when a tiny model is made (it imports torch)."""
    from . import tiny

    return tiny


BASE = ModelKind(
    "base", "The text-to-image base model (diffusers layout).",
    settings=properties("""\
repo_id:
  type: string
  default: CompVis/stable-diffusion-v1-4
  description: Hugging Face repository of the base model.
revision:
  type: string
  default: 133a221b8aa7292a167afc5127cb63fb5005638b
  description: >-
    Revision (branch, tag or commit) of the base model; the default is the commit of
    CompVis/stable-diffusion-v1-4's main since 2023 (a commit pins the files; a
    branch such as main follows whatever is pushed to it, and the report says so).
"""),
    download=lambda work, settings: download_base_model(work, settings["repo_id"], settings["revision"]),
    create_tiny=lambda work, seed: _tiny().create_tiny_base_model(work, seed),
    pin=repository_pin,
    describe=lambda settings, source: f"Base model: {settings['repo_id']} ({source} weights)",
)

SAM = ModelKind(
    "sam", "Segment Anything checkpoint used for the foreground masks.",
    settings=properties("""\
model_type:
  type: string
  enum: [vit_h, vit_l, vit_b]
  default: vit_h
  description: SAM backbone (vit_h is the paper default, vit_b the light option).
url:
  type: string
  default: https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth
  description: Download URL of the checkpoint.
sha256:
  type: [string, "null"]
  default: null
  description: Expected sha256 of the checkpoint (null = not checked).
"""),
    download=lambda work, settings: download_sam(work, settings["model_type"], settings["url"], settings["sha256"]),
    create_tiny=lambda work, seed: _tiny().create_tiny_sam(work, seed),
    pin=file_pin,
)

CLIP = ModelKind(
    "clip", "open_clip model used by the metrics.",
    settings=properties("""\
model_name:
  type: string
  default: ViT-L-14
  description: open_clip architecture name.
pretrained:
  type: string
  default: openai
  description: open_clip pretrained tag.
"""),
    download=lambda work, settings: download_clip(work, settings["model_name"], settings["pretrained"]),
    create_tiny=lambda work, seed: _tiny().create_tiny_clip(work, seed),
    pin=open_clip_pin,
    describe=lambda settings, source: (f"CLIP model: {settings['model_name']}, pretrained {settings['pretrained']} "
                                       "(the poster does not say which CLIP)"),
)

MOTION_ADAPTER = ModelKind(
    "motion_adapter",
    "AnimateDiff's pretrained motion adapter (diffusers MotionAdapter layout), for the animatediff methods only; "
    "trained by its authors with SD-1.5.",
    settings=properties("""\
repo_id:
  type: string
  default: guoyww/animatediff-motion-adapter-v1-5-2
  description: Hugging Face repository of the motion adapter.
revision:
  type: string
  default: 6167b88ffe39b4441fdf2113e77b99a6f56b7906
  description: Revision (commit) of the motion adapter; pinned, the repository's main of 2023-11.
"""),
    download=lambda work, settings: download_motion_adapter(work, settings["repo_id"], settings["revision"]),
    create_tiny=lambda work, seed: _tiny().create_tiny_motion_adapter(work, seed),
    pin=repository_pin,
    describe=lambda settings, source: (f"Motion adapter: {settings['repo_id']} (trained by AnimateDiff's authors "
                                       "with SD-1.5; used here with the base model above, as every method)"),
)

DINO = ModelKind(
    "dino",
    "DINO ViT-B/16 backbone (facebookresearch/dino), for VBench's subject consistency; loaded into timm's "
    "VisionTransformer.",
    settings=properties("""\
url:
  type: string
  default: https://dl.fbaipublicfiles.com/dino/dino_vitbase16_pretrain/dino_vitbase16_pretrain.pth
  description: Download URL of the backbone's state dict (torch.save-d, as DINO publishes it).
sha256:
  type: [string, "null"]
  default: null
  description: >-
    Expected sha256 (null = not checked; the prepared folder's prepared.json records
    the sha256 actually downloaded, paste it here to pin it); the full 64-hex digest,
    or a prefix of at least 8 hex characters that the digest must start with.
"""),
    # DINO_CONFIG is read when called: the tests serve a tiny DINO in its place
    download=lambda work, settings: download_checkpoint(work, settings["url"], settings["sha256"], DINO_WEIGHTS_FILE,
                                                        DINO_CONFIG_FILE, DINO_CONFIG),
    create_tiny=lambda work, seed: _tiny().create_tiny_dino(work, seed),
    pin=file_pin,
    describe=lambda settings, source: "DINO: ViT-B/16 of facebookresearch/dino (VBench's subject consistency)",
)

RAFT = ModelKind(
    "raft", "RAFT optical flow (torchvision's port of princeton-vl/RAFT), for VBench's dynamic degree.",
    settings=properties("""\
variant:
  type: string
  enum: [raft_large, raft_small]
  default: raft_large
  description: >-
    torchvision RAFT architecture; url must hold weights of this one (raft_large is
    the original RAFT, which VBench uses).
url:
  type: string
  default: https://download.pytorch.org/models/raft_large_C_T_V1-22a6c225.pth
  description: >-
    Download URL of the state dict; the default is torchvision's port of the original
    RAFT's "things" weights (raft-things.pth), the ones VBench uses.
sha256:
  type: [string, "null"]
  default: "22a6c225"
  description: >-
    Expected sha256 (null = not checked): the full 64-hex digest, or a prefix of at
    least 8 hex characters that the digest must start with (the default is the prefix
    in torchvision's file name, which torchvision checks too). prepared.json records
    the full sha256 downloaded.
"""),
    download=lambda work, settings: download_checkpoint(work, settings["url"], settings["sha256"], RAFT_WEIGHTS_FILE,
                                                        RAFT_CONFIG_FILE, {"variant": settings["variant"]}),
    create_tiny=lambda work, seed: _tiny().create_tiny_raft(work, seed),
    pin=file_pin,
    describe=lambda settings, source: (f"RAFT: torchvision's {settings['variant']}, the original RAFT's weights "
                                       "(VBench's dynamic degree)"),
)

AESTHETIC = ModelKind(
    "aesthetic",
    "LAION's aesthetic predictor (LAION-AI/aesthetic-predictor), a linear head on CLIP ViT-L/14 image embeddings, "
    "for VBench's aesthetic quality.",
    settings=properties("""\
url:
  type: string
  default: https://github.com/LAION-AI/aesthetic-predictor/raw/7e37768a02b0863eac390a702903aaa90ecf938e/sa_0_4_vit_l_14_linear.pth
  description: Download URL of the head's state dict (a torch.save-d Linear(768, 1)), pinned to a commit.
sha256:
  type: [string, "null"]
  default: 2cd4e60f4f24ae3bcd57b847b13c1f3ba27edc28cc1a7f9ce74ee9f421243cba
  description: >-
    Expected sha256 (null = not checked): the full 64-hex digest, or a prefix of at
    least 8 hex characters that the digest must start with.
"""),
    download=lambda work, settings: download_checkpoint(work, settings["url"], settings["sha256"],
                                                        AESTHETIC_WEIGHTS_FILE, AESTHETIC_CONFIG_FILE,
                                                        AESTHETIC_CONFIG),
    create_tiny=lambda work, seed: _tiny().create_tiny_aesthetic(work, seed),
    pin=file_pin,
    describe=lambda settings, source: ("Aesthetic predictor: LAION's linear head on CLIP ViT-L/14 image embeddings "
                                       "(VBench's aesthetic quality)"),
)

#: In the registry's order (the rules' wildcard, the report's model notes).
BUILTIN_KINDS = (BASE, SAM, CLIP, MOTION_ADAPTER, DINO, RAFT, AESTHETIC)
