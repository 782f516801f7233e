"""Text2Video-Zero (Khachatryan et al., ICCV 2023) of our own, as a diffusers pipeline.

The original's algorithm, step for step as diffusers' (deprecated) ``TextToVideoZeroPipeline``
runs it, background smoothing off as there:

1. frame 1 alone is denoised from noise down to step ``t1`` (kept), then on down to ``t0``;
2. its latent at ``t0`` is copied to frames 2..F, frame k shifted by the global translation
   k x (strength_x, strength_y) pixels of a 512 x 512 grid (nearest sampling, reflection);
3. frames 2..F are noised again from ``t0`` up to ``t1`` (the DDPM forward process);
4. all frames are denoised from ``t1`` to the end together, each frame's self-attention
   reading its keys and values from frame 1 (cross-frame attention).

What differs is how, not what: the warp is one ``grid_sample`` for all frames; the
cross-frame attention is a :class:`VideoUNet` without adapter over a copy of the UNet (the
given UNet keeps its processors), with keys and values computed for frame 1 only; several
seeds run as one batch; the UNet runs in its weights' dtype (bf16 on GPUs) while latents and
the scheduler stay float32. ``tests/test_sampling.py`` compares its frames with diffusers'.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput

from .sampling import (
    SamplingError, batch_randn, check_inputs, decode_videos, generators_of, guidance_text, guided_step,
    vae_scale_factor,
)
from .video_unet import VideoUNet

#: The motion field's grid: strengths are pixels of a 512 x 512 image, whatever the frame size
#: (the original resizes this grid to the latents).
MOTION_FIELD_GRID = 512


def translate_latents(latents: torch.Tensor, shift_x: torch.Tensor, shift_y: torch.Tensor,
                      grid: int = MOTION_FIELD_GRID) -> torch.Tensor:
    """Latents (N, C, h, w) each moved by its own (shift_x[i], shift_y[i]) pixels of a
    ``grid`` x ``grid`` image: the original's coordinate field on that grid, resized to (h, w)
    bilinearly, then sampled nearest with reflection at the borders. Computed in float32 (a
    bf16 grid cannot hold coordinates up to 512 exactly)."""
    n = len(latents)
    ys, xs = torch.meshgrid(torch.arange(grid, device=latents.device), torch.arange(grid, device=latents.device),
                            indexing="ij")
    coords = torch.stack([xs, ys]).float()[None]
    shift = torch.stack([shift_x, shift_y], dim=1).float().to(latents.device)[:, :, None, None]
    coords = (coords + shift) / grid * 2.0 - 1.0
    coords = F.interpolate(coords, size=latents.shape[-2:], mode="bilinear", align_corners=False)
    warped = F.grid_sample(latents.float(), coords.permute(0, 2, 3, 1), mode="nearest", padding_mode="reflection",
                           align_corners=False)
    return warped.to(latents.dtype).reshape(n, *latents.shape[1:])


@dataclass
class Text2VideoZeroPipelineOutput(BaseOutput):
    """``frames``: uint8 (F, H, W, 3), (B, F, H, W, 3) for a list of generators, or the final
    latents (B, C, F, h, w) for ``output_type="latent"``."""

    frames: np.ndarray | torch.Tensor


class Text2VideoZeroPipeline(DiffusionPipeline):
    """Stable Diffusion's components sampled zero-shot as videos (see the module's docstring)."""

    def __init__(self, vae, text_encoder, tokenizer, unet, scheduler) -> None:
        super().__init__()
        self.register_modules(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler)
        self._model = self._model_key = None
        self.compile_options: dict | None = None

    @property
    def video_unet(self):
        """The UNet with cross-frame attention, over its own copy of ``unet`` (compiled when
        :attr:`compile_options` is set; see sampling.maybe_compile)."""
        from .sampling import maybe_compile

        key = (id(self.unet), self.unet.conv_in.weight.data_ptr(), str(self.compile_options))
        if self._model_key != key:
            self._model = maybe_compile(VideoUNet(self.unet).eval(), self.compile_options)
            self._model_key = key
        return self._model

    def check_inputs(self, prompt, num_frames, height, width, num_inference_steps, t0, t1, output_type) -> None:
        if not isinstance(prompt, str):
            raise SamplingError(f"prompt must be one string, got {type(prompt).__name__}")
        if not 0 <= t0 < t1 < num_inference_steps:
            raise SamplingError(f"need 0 <= t0 < t1 < num_inference_steps, got t0={t0}, t1={t1}, "
                                f"num_inference_steps={num_inference_steps}")
        if output_type not in ("np", "latent"):
            raise SamplingError(f"output_type must be 'np' or 'latent', got {output_type!r}")
        check_inputs(num_frames, height, width, vae_scale_factor(self.vae), None)

    def denoise(self, latents, timesteps, text, guidance_scale, scheduler):
        """``scheduler``'s steps over ``timesteps`` from ``latents`` (B, C, F, h, w),
        with classifier-free guidance when ``guidance_scale`` > 1 (``text``: unconditional
        embeddings of the B videos, then conditional)."""
        model = self.video_unet
        for t in self.progress_bar(timesteps):
            latents = guided_step(model, scheduler, latents, t, text, guidance_scale)
        return latents

    @torch.no_grad()
    def __call__(self, prompt: str, num_frames: int = 8, height: int = 512, width: int = 512,
                 num_inference_steps: int = 50, guidance_scale: float = 7.5, t0: int = 44, t1: int = 47,
                 motion_field_strength_x: float = 12.0, motion_field_strength_y: float = 12.0,
                 generator: torch.Generator | list[torch.Generator] | None = None, output_type: str = "np",
                 return_dict: bool = True):
        """A video of ``prompt`` per generator (one generator: one video). ``t0`` and ``t1`` count
        steps from the end, as the original's (``timesteps[-t - 1]``)."""
        # 1. Check inputs
        self.check_inputs(prompt, num_frames, height, width, num_inference_steps, t0, t1, output_type)
        device = self._execution_device
        generators = generators_of(generator)
        b = len(generators)
        # 2. Encode the prompt (unconditional first, for classifier-free guidance)
        text = guidance_text(self.text_encoder, self.tokenizer, prompt, guidance_scale, b, device)
        # 3. Timesteps
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        timesteps = self.scheduler.timesteps
        # 4. Frame 1's noise (drawn first from each generator, as the original)
        factor = vae_scale_factor(self.vae)
        latent_shape = (self.unet.config.in_channels, height // factor, width // factor)
        noise = batch_randn((1, *latent_shape), generators, device)
        first = (noise * self.scheduler.init_noise_sigma)[:, :, None]
        # 5. Frame 1 alone down to t1 (kept), then on to t0; the last pass restarts from t1 with
        # the scheduler's state at t1, as the original's
        first_t1 = self.denoise(first, timesteps[: -t1 - 1], text, guidance_scale, self.scheduler)
        at_t1 = copy.deepcopy(self.scheduler)
        first_t0 = self.denoise(first_t1, timesteps[-t1 - 1: -t0 - 1], text, guidance_scale, self.scheduler)
        # 6. Frames 2..F: frame 1 at t0 moved by the motion field, all frames in one warp
        steps = torch.arange(1, num_frames, device=device, dtype=torch.float32).repeat(b)
        copies = first_t0[:, :, 0].repeat_interleave(num_frames - 1, dim=0)
        moved = translate_latents(copies, steps * motion_field_strength_x, steps * motion_field_strength_y)
        # 7. ... and noised again from t0 up to t1 (the original's product of alphas[t0:t1])
        eps = batch_randn((num_frames - 1, *latent_shape), generators, device)
        step_t0, step_t1 = timesteps[-t0 - 1].item(), timesteps[-t1 - 1].item()
        alpha = torch.prod(self.scheduler.alphas[step_t0:step_t1])
        moved = alpha.sqrt() * moved + (1 - alpha).sqrt() * eps
        moved = moved.reshape(b, num_frames - 1, *latent_shape).transpose(1, 2)
        # 8. All frames from t1 to the end, with cross-frame attention
        latents = self.denoise(torch.cat([first_t1, moved], dim=2), timesteps[-t1 - 1:], text, guidance_scale, at_t1)
        # 9. Decode
        frames = latents if output_type == "latent" else decode_videos(self.vae, latents, generator)
        self.maybe_free_model_hooks()
        return Text2VideoZeroPipelineOutput(frames=frames) if return_dict else (frames,)
