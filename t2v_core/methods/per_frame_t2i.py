"""Per-frame text-to-image: every frame an independent image of the base model (beyond the
poster: a floor for consistency and a ceiling for diversity)."""

from __future__ import annotations

import numpy as np

from ..settings import properties
from .base import Method


def sample_per_frame_t2i(parts, prompt, num_frames, height, width, num_inference_steps, guidance_scale,
                         generator, device="cpu") -> np.ndarray:
    """``num_frames`` images of ``prompt`` from diffusers' ``StableDiffusionPipeline``, uint8 (F, H, W, 3)."""
    from diffusers import StableDiffusionPipeline

    from ..sampling import diffusers_pipeline, to_uint8

    pipe = diffusers_pipeline(StableDiffusionPipeline, parts, device)
    result = pipe(
        prompt=prompt, height=height, width=width, num_inference_steps=num_inference_steps,
        guidance_scale=guidance_scale, num_images_per_prompt=num_frames, generator=generator,
        output_type="np",
    )
    return to_uint8(result.images)


class PerFrameT2I(Method):
    def sample(self, loaded, prompt, generator, call, first_frame=None):
        return sample_per_frame_t2i(loaded, prompt, generator=generator, device=loaded["unet"].device,
                                    **call.arguments())


PER_FRAME_T2I = PerFrameT2I(
    name="per_frame_t2i",
    label="Per-frame T2I",
    description="every frame an independent image of the base text-to-image model",
    deviation="the per-frame text-to-image row is an addition (a floor for consistency, a ceiling for diversity)",
    settings=properties("""guidance_scale: {$ref: "#/definitions/guidance_scale", default: 7.5}"""),
)

DECLARED_METHODS = (PER_FRAME_T2I,)
