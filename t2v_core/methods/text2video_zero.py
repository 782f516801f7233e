"""Text2Video-Zero (Khachatryan et al., ICCV 2023): zero-shot, through diffusers' reference
``TextToVideoZeroPipeline`` over the base model's components."""

from __future__ import annotations

import numpy as np

from .base import Method


def sample_text2video_zero(parts, prompt, num_frames, height, width, num_inference_steps, guidance_scale, t0, t1,
                           motion_field_strength_x, motion_field_strength_y, generator, device="cpu") -> np.ndarray:
    """One video as uint8 frames (F, H, W, 3), exactly as the reference pipeline makes it."""
    from diffusers import TextToVideoZeroPipeline

    from ..sampling import diffusers_pipeline, to_uint8

    pipe = diffusers_pipeline(TextToVideoZeroPipeline, parts, device)
    result = pipe(
        prompt=prompt, video_length=num_frames, height=height, width=width,
        num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, t0=t0, t1=t1,
        motion_field_strength_x=motion_field_strength_x, motion_field_strength_y=motion_field_strength_y,
        generator=generator, output_type="np",
    )
    return to_uint8(result.images)


class Text2VideoZero(Method):
    def check_config(self, config):
        settings, steps = config["sampling"][self.name], config["sampling"]["num_inference_steps"]
        if settings["t0"] < settings["t1"] < steps:
            return []
        return [f"  sampling.{self.name}: need t0 < t1 < num_inference_steps, got t0={settings['t0']}, "
                f"t1={settings['t1']}, num_inference_steps={steps}"]

    def sample(self, loaded, prompt, generator, video, sampling, first_frame=None):
        settings = sampling[self.name]
        return sample_text2video_zero(
            loaded, prompt, num_frames=video["num_frames"], height=video["height"], width=video["width"],
            num_inference_steps=sampling["num_inference_steps"], guidance_scale=settings["guidance_scale"],
            t0=settings["t0"], t1=settings["t1"], motion_field_strength_x=settings["motion_field_strength_x"],
            motion_field_strength_y=settings["motion_field_strength_y"], generator=generator,
            device=loaded["unet"].device,
        )


TEXT2VIDEO_ZERO = Text2VideoZero(
    name="text2video_zero",
    label="Text2Video-Zero",
    description="zero-shot: warped latents and cross-frame attention (diffusers' reference pipeline)",
    poster={"alignment": 27.84, "consistency": 94.10, "diversity": 82.26},
)

METHODS = (TEXT2VIDEO_ZERO,)
