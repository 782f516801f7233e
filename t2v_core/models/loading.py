"""Loading the prepared models: one code path for the real weights, the tiny ones and those of
plugins; and :class:`ClipEmbedder`, the embeddings that the metrics and the masks read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .layout import CLIP_CONFIG_FILE, SAM_CONFIG_FILE, SAM_SAFETENSORS_FILE, SAM_WEIGHTS_FILE


def _require(path: Path, what: str) -> None:
    if not path.exists():
        raise FileNotFoundError(f"{path}: {what} not found; run the prepare_models rule first")


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
    _require(model_dir / SAM_CONFIG_FILE, "SAM config")
    model_type = json.loads((model_dir / SAM_CONFIG_FILE).read_text())["model_type"]
    sam = build_tiny_sam() if model_type == "tiny" else sam_model_registry[model_type]()
    if (model_dir / SAM_SAFETENSORS_FILE).exists():
        from safetensors.torch import load_file

        state = load_file(model_dir / SAM_SAFETENSORS_FILE)
    else:
        _require(model_dir / SAM_WEIGHTS_FILE, "SAM checkpoint")
        state = torch.load(model_dir / SAM_WEIGHTS_FILE, map_location="cpu", weights_only=True)
    sam.load_state_dict(state)
    return sam.to(device).eval()


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

    @torch.no_grad()
    def frames(self, frames) -> np.ndarray:
        """uint8 frames (N, H, W, 3), or a list of uint8 images of any sizes -> (N, D)."""
        from PIL import Image

        out = []
        for start in range(0, len(frames), self.batch_size):
            batch = torch.stack([self.preprocess(Image.fromarray(f)) for f in frames[start:start + self.batch_size]])
            out.append(self.model.encode_image(batch.to(self.device)).float().cpu())
        return self._normalise(torch.cat(out).double().numpy())

    @torch.no_grad()
    def text(self, prompt: str) -> np.ndarray:
        tokens = self.tokenizer([prompt]).to(self.device)
        return self._normalise(self.model.encode_text(tokens).float().cpu().double().numpy()[0])
