"""A sampling-only method: one image of the base model, repeated, darkening towards the last
frame by its own setting ``sampling.still.fade``."""

from __future__ import annotations

import numpy as np

from t2v_core.methods import register_method
from t2v_core.methods.base import Method
from t2v_core.settings import GUIDANCE_SCALE, properties


class Still(Method):
    def sample(self, loaded, prompt, generator, call, first_frame=None):
        from t2v_core.methods.per_frame_t2i import sample_per_frame_t2i

        image = sample_per_frame_t2i(loaded, prompt, generator=generator, device=loaded["unet"].device,
                                     **{**call.arguments("fade"), "num_frames": 1})[0]
        brightness = 1.0 - call.own.fade * np.linspace(0.0, 1.0, call.num_frames)
        return np.round(image[None] * brightness[:, None, None, None]).astype(np.uint8)


STILL = Still(
    "still", "Still image", "one image of the base model repeated, fading by sampling.still.fade",
    settings=properties(f"""\
guidance_scale: {{$ref: "{GUIDANCE_SCALE}", default: 7.5}}
fade:
  type: number
  minimum: 0
  maximum: 1
  default: 0.0
  description: How much darker the last frame is than the first (linear over the frames).
"""))
register_method(STILL)
