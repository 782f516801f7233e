"""Loading the prepared models: one code path for the real weights, the tiny ones and those of
plugins; and :class:`ClipEmbedder`, the embeddings that the metrics and the masks read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .layout import (
    AESTHETIC_CONFIG_FILE, AESTHETIC_SAFETENSORS_FILE, AESTHETIC_WEIGHTS_FILE, CLIP_CONFIG_FILE,
    DINO_CONFIG_FILE, DINO_SAFETENSORS_FILE, DINO_WEIGHTS_FILE, RAFT_CONFIG_FILE, RAFT_SAFETENSORS_FILE,
    RAFT_WEIGHTS_FILE, SAM_CONFIG_FILE, SAM_SAFETENSORS_FILE, SAM_WEIGHTS_FILE,
)


def _require(path: Path, what: str) -> None:
    if not path.exists():
        raise FileNotFoundError(f"{path}: {what} not found; run the prepare_models rule first")


def _config(model_dir: Path, config_file: str, what: str) -> dict:
    _require(model_dir / config_file, f"{what} config")
    return json.loads((model_dir / config_file).read_text())


def _state_dict(model_dir: Path, safetensors_file: str, pth_file: str, what: str) -> dict:
    """The weights of a prepared folder: our safetensors when there, else the official ``.pth``
    state dict as downloaded (tensors only: ``weights_only``)."""
    if (model_dir / safetensors_file).exists():
        from safetensors.torch import load_file

        return load_file(model_dir / safetensors_file)
    _require(model_dir / pth_file, f"{what} checkpoint")
    return torch.load(model_dir / pth_file, map_location="cpu", weights_only=True)


def loaded_model(model, load, device="cpu"):
    """``model`` as given when it is already loaded, else ``load(model, device)`` of its prepared
    folder (a path): the evaluators' features take either, the evaluate job loading once."""
    return load(model, device) if isinstance(model, (str, Path)) else model


def load_base_components(model_dir: str | Path, device="cpu", dtype=torch.float32) -> dict:
    """The text-to-image model's parts from a diffusers folder, DDIM as the scheduler."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    model_dir = Path(model_dir)
    _require(model_dir / "model_index.json", "diffusers model_index.json")
    parts = {
        "unet": UNet2DConditionModel.from_pretrained(model_dir, subfolder="unet", torch_dtype=dtype),
        "vae": AutoencoderKL.from_pretrained(model_dir, subfolder="vae", torch_dtype=dtype),
        "text_encoder": CLIPTextModel.from_pretrained(model_dir, subfolder="text_encoder", torch_dtype=dtype),
    }
    for module in parts.values():
        module.to(device).eval().requires_grad_(False)
    parts["tokenizer"] = CLIPTokenizer.from_pretrained(model_dir, subfolder="tokenizer")
    parts["scheduler"] = DDIMScheduler.from_pretrained(model_dir, subfolder="scheduler")
    return parts


def load_sam(model_dir: str | Path, device="cpu"):
    """A segment-anything ``Sam`` from a prepared folder (safetensors, or the official ``.pth``)."""
    from segment_anything import sam_model_registry

    from .tiny import build_tiny_sam

    model_dir = Path(model_dir)
    model_type = _config(model_dir, SAM_CONFIG_FILE, "SAM")["model_type"]
    sam = build_tiny_sam() if model_type == "tiny" else sam_model_registry[model_type]()
    sam.load_state_dict(_state_dict(model_dir, SAM_SAFETENSORS_FILE, SAM_WEIGHTS_FILE, "SAM"))
    return sam.to(device).eval()


def load_dino(model_dir: str | Path, device="cpu"):
    """(model, image size) of a DINO ViT backbone: :class:`~.dino.DinoVisionTransformer`
    (timm's ``VisionTransformer``, whose keys are those of DINO's checkpoints, reading images as
    DINO's code does). ``model(x)`` maps images (N, 3, H, W) of any size, normalised with
    ImageNet's mean and std, to their CLS features (N, embed_dim); position embeddings
    interpolated from ``image size``, the size DINO was trained at."""
    from .dino import DinoVisionTransformer

    model_dir = Path(model_dir)
    config = _config(model_dir, DINO_CONFIG_FILE, "DINO")
    image_size = config.pop("image_size")
    model = DinoVisionTransformer(**config, img_size=image_size, dynamic_img_size=True)
    model.load_state_dict(_state_dict(model_dir, DINO_SAFETENSORS_FILE, DINO_WEIGHTS_FILE, "DINO"))
    return model.to(device).eval(), image_size


def load_raft(model_dir: str | Path, device="cpu"):
    """torchvision's RAFT (``raft_large``, ``raft_small`` or the tiny one, as the folder says). It takes two
    image batches (N, 3, H, W) in [-1, 1], H and W multiples of 8 and at least 128 (its
    correlation pyramid), and returns the list of its flow estimates (N, 2, H, W), the last
    the final one."""
    from .tiny import build_raft

    model_dir = Path(model_dir)
    config = _config(model_dir, RAFT_CONFIG_FILE, "RAFT")
    model = build_raft(config["variant"], config.get("architecture"))
    model.load_state_dict(_state_dict(model_dir, RAFT_SAFETENSORS_FILE, RAFT_WEIGHTS_FILE, "RAFT"))
    return model.to(device).eval()


def load_aesthetic(model_dir: str | Path, device="cpu"):
    """LAION's aesthetic predictor: a ``Linear(in_features, 1)`` from CLIP image embeddings
    (L2-normalised, as LAION trained it) to a score."""
    model_dir = Path(model_dir)
    config = _config(model_dir, AESTHETIC_CONFIG_FILE, "aesthetic predictor")
    model = torch.nn.Linear(config["in_features"], 1)
    model.load_state_dict(_state_dict(model_dir, AESTHETIC_SAFETENSORS_FILE, AESTHETIC_WEIGHTS_FILE,
                                      "aesthetic predictor"))
    return model.to(device).eval()


def load_clip(model_dir: str | Path, device="cpu"):
    """(model, image preprocess, tokenizer) of an open_clip model in ``local-dir:`` layout."""
    import open_clip

    model_dir = Path(model_dir)
    _require(model_dir / CLIP_CONFIG_FILE, "open_clip config")
    name = f"local-dir:{model_dir}"
    model, _, preprocess = open_clip.create_model_and_transforms(name, device=device)
    return model.eval(), preprocess, open_clip.get_tokenizer(name)


class ClipEmbedder:
    """Batched open_clip image and text embeddings (L2-normalised, float64 numpy)."""

    def __init__(self, model, preprocess, tokenizer, device="cpu", batch_size=32):
        self.model, self.preprocess, self.tokenizer = model, preprocess, tokenizer
        self.device, self.batch_size = device, batch_size

    @staticmethod
    def _normalise(x):
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    def _batches(self, frames):
        """The frames preprocessed for the image tower, ``batch_size`` at a time, on the device."""
        from PIL import Image

        for start in range(0, len(frames), self.batch_size):
            batch = torch.stack([self.preprocess(Image.fromarray(f)) for f in frames[start:start + self.batch_size]])
            yield batch.to(self.device)

    @torch.no_grad()
    def frames(self, frames) -> np.ndarray:
        """uint8 frames (N, H, W, 3), or a list of uint8 images of any sizes -> (N, D)."""
        out = [self.model.encode_image(batch).float().cpu() for batch in self._batches(frames)]
        return self._normalise(torch.cat(out).double().numpy())

    @torch.no_grad()
    def frame_tokens(self, frames) -> np.ndarray:
        """uint8 frames (N, H, W, 3) -> (N, T * W): the image tower's output tokens (one per
        patch, before pooling and projection), flattened. Unlike the pooled embedding they keep
        where things are in the frame: a subject that jumps from place to place changes them."""
        visual = self.model.visual
        if not hasattr(visual, "output_tokens"):
            raise ValueError(f"the CLIP model's image tower ({type(visual).__name__}) gives no patch tokens: "
                             "subject_consistency_clip needs a ViT image tower")
        out, previous = [], visual.output_tokens
        visual.output_tokens = True
        try:
            for batch in self._batches(frames):
                _, tokens = visual(batch)
                out.append(tokens.float().flatten(1).cpu())
        finally:
            # the embedder's own model; left as it was for the pooled embeddings
            visual.output_tokens = previous
        return torch.cat(out).double().numpy()

    @torch.no_grad()
    def text(self, prompt: str) -> np.ndarray:
        tokens = self.tokenizer([prompt]).to(self.device)
        return self._normalise(self.model.encode_text(tokens).float().cpu().double().numpy()[0])
