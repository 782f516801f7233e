"""Text2Video-Zero (Khachatryan et al., ICCV 2023): zero-shot, sampled by our own pipeline
(:class:`t2v_core.text2video_zero_pipeline.Text2VideoZeroPipeline`: batched, bf16 on GPUs) or, with
``sampling.text2video_zero.implementation: diffusers``, by diffusers' deprecated reference
``TextToVideoZeroPipeline`` over the base model's components (for cross-checks)."""

from __future__ import annotations

import numpy as np

from ..settings import properties
from .base import Method

#: The original's videos: 8 frames, each moved by the motion field's strength (pixels of a 512 grid).
ORIGINAL_NUM_FRAMES = 8


def with_suffix(prompt: str, suffix: str) -> str:
    """The prompt the original's code gives its pipeline: a trailing "," or "." dropped, then
    ", " and the suffix; the prompt unchanged when the suffix is empty."""
    if not suffix:
        return prompt
    prompt = prompt.rstrip()
    if prompt.endswith((",", ".")):
        prompt = prompt[:-1].rstrip()
    return f"{prompt}, {suffix}"


def motion_field_strengths(x: float, y: float, scaling: str, num_frames: int) -> tuple[float, float]:
    """(x, y) strengths given to the pipeline: as configured (``scaling`` per_frame: each
    frame's step, as the original's), or scaled so that the last of ``num_frames`` frames ends
    where the original's 8th does (per_video)."""
    if scaling == "per_video" and num_frames > 1:
        scale = (ORIGINAL_NUM_FRAMES - 1) / (num_frames - 1)
        return x * scale, y * scale
    return x, y


def sample_text2video_zero_diffusers(parts, prompt, num_frames, height, width, num_inference_steps, guidance_scale, t0, t1,
                           motion_field_strength_x, motion_field_strength_y, generator, device="cpu") -> np.ndarray:
    """One video as uint8 frames (F, H, W, 3), exactly as diffusers' reference pipeline makes it."""
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

    def load(self, model_dirs, adapter_dir, device, dtype=None):
        from ..text2video_zero_pipeline import Text2VideoZeroPipeline

        pipe = Text2VideoZeroPipeline(**super().load(model_dirs, adapter_dir, device, dtype))
        pipe.set_progress_bar_config(desc=f"{self.name} denoising")
        return pipe

    def sample(self, loaded, prompt, generator, call, first_frame=None):
        return self.sample_batch(loaded, prompt, [generator], call, first_frame)[0]

    def sample_batch(self, loaded, prompt, generators, call, first_frame=None):
        own = call.own
        strength_x, strength_y = motion_field_strengths(own.motion_field_strength_x, own.motion_field_strength_y,
                                                        own.motion_field_scaling, call.num_frames)
        kwargs = {**call.arguments("implementation", "motion_field_scaling", "prompt_suffix"),
                  "motion_field_strength_x": strength_x, "motion_field_strength_y": strength_y}
        prompt = with_suffix(prompt, own.prompt_suffix)
        if own.implementation == "diffusers":  # one video per call, over the same components
            parts = loaded.components
            return [sample_text2video_zero_diffusers(parts, prompt, generator=g, device=parts["unet"].device, **kwargs)
                    for g in generators]
        return list(loaded(prompt, generator=list(generators), **kwargs).frames)


TEXT2VIDEO_ZERO = Text2VideoZero(
    name="text2video_zero",
    label="Text2Video-Zero",
    description="zero-shot: warped latents and cross-frame attention (the original's algorithm, our batched pipeline)",
    poster={"alignment": 27.84, "consistency": 94.10, "diversity": 82.26},
    settings=properties("""\
implementation:
  type: string
  enum: [ours, diffusers]
  default: ours
  description: >-
    ours = this project's pipeline (t2v_core/text2video_zero_pipeline.py: the original's
    algorithm, seeds batched, bf16 on GPUs); diffusers = diffusers' deprecated
    TextToVideoZeroPipeline, one video per call (for cross-checks: on CPUs in float32
    the two give frames within one uint8 level of each other).
guidance_scale: {$ref: "#/definitions/guidance_scale", default: 7.5}
t0:
  type: integer
  minimum: 0
  default: 44
  description: DDIM step index of the warped latent (of num_inference_steps).
t1:
  type: integer
  minimum: 0
  default: 47
  description: DDIM step index the warped latents are re-noised to (t1 > t0).
motion_field_strength_x:
  type: number
  default: 12
  description: >-
    Global translation per frame in x, in pixels of a 512-pixel-wide frame whatever
    the video's size (diffusers' and the original's motion field is a 512x512 grid
    resized to the latents): 12 moves a frame by 2.3% of its width.
motion_field_strength_y:
  type: number
  default: 12
  description: Global translation per frame in y (as motion_field_strength_x, of the height).
motion_field_scaling:
  type: string
  enum: [per_frame, per_video]
  default: per_frame
  description: >-
    per_frame = the strengths are each frame's step, as the original's (its 8-frame
    videos end 7 x 12 / 512 = 16% away; 16 frames end 35% away); per_video = the
    strengths are scaled by 7 / (num_frames - 1), so that the last frame ends as far
    away as the original's 8th.
prompt_suffix:
  type: string
  default: ""
  description: >-
    Appended to every prompt after ", " (a trailing comma or full stop of the prompt
    dropped), as the original's code does with "high quality, HD, 8K, trending on
    artstation, high focus, dramatic lighting"; "" = the prompt as given (diffusers'
    pipeline). The metrics always score against the prompt as given.
"""),
)

DECLARED_METHODS = (TEXT2VIDEO_ZERO,)
