"""A trained temporal adapter as a diffusers pipeline, usable outside the workflow.

    adapter = TemporalAdapter.from_pretrained("results/demo/finetune/lamp/moves_right/adapter")
    pipe = FirstFrameVideoPipeline.from_pretrained("results/demo/models/base", adapter=adapter)
    frames = pipe("a red square moves right on a black background", first_frame=image,
                  num_frames=8, height=64, width=64, generator=torch.Generator().manual_seed(0)).frames

LAMP's sampling (and Ours'): DDIM with classifier-free guidance over a :class:`VideoUNet`,
LAMP's shared noise, the first frame given as clean latents of an image (or, without one,
denoised from noise with the others), and LAMP's AdaIN schedule. The workflow's LAMP and
Ours methods sample through this class, so what it gives is what the table measures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput

from .sampling import (
    SamplingError, check_inputs, decode_videos, encode_first_frame, generators_of, guidance_text, guided_step,
    lamp_adain_final, lamp_adain_step, maybe_compile, shared_noise, vae_scale_factor,
)
from .video_unet import TemporalAdapter, VideoUNet


@dataclass
class FirstFrameVideoPipelineOutput(BaseOutput):
    """``frames``: uint8 (F, H, W, 3), (B, F, H, W, 3) for a list of generators, or the final
    latents (B, C, F, h, w) for ``output_type="latent"``."""

    frames: np.ndarray | torch.Tensor


class FirstFrameVideoPipeline(DiffusionPipeline):
    """Stable Diffusion's components plus a :class:`TemporalAdapter`; samples one video per call.

    ``save_pretrained`` writes all six components (the adapter as safetensors + config in
    ``adapter/``); ``from_pretrained`` reads such a folder, or a Stable Diffusion folder with the
    adapter passed as a keyword. The base ``unet`` is never changed: the video model is a
    :class:`VideoUNet` over its own copy of it (:attr:`video_unet`).
    """

    def __init__(self, vae, text_encoder, tokenizer, unet, scheduler, adapter: TemporalAdapter) -> None:
        super().__init__()
        self.register_modules(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                              scheduler=scheduler, adapter=adapter)
        self._video_unet = self._video_unet_key = None
        #: torch.compile's options for the video UNet, or None (see sampling.maybe_compile)
        self.compile_options: dict | None = None

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """As diffusers' ``from_pretrained``; the scheduler is DDIM, read from the folder's
        scheduler config, unless one is passed (LAMP samples with DDIM; Stable Diffusion's own
        folder names PNDM, and the workflow's base models are loaded the same way)."""
        if "scheduler" not in kwargs:
            from diffusers import DDIMScheduler

            kwargs["scheduler"] = DDIMScheduler.from_pretrained(pretrained_model_name_or_path, subfolder="scheduler")
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    @property
    def vae_scale_factor(self) -> int:
        return vae_scale_factor(self.vae)

    @property
    def video_unet(self) -> VideoUNet:
        """The UNet with the adapter's temporal modules; built again when ``unet`` or ``adapter``
        was replaced or moved (its copy shares the UNet's weights where they are now)."""
        key = (id(self.unet), id(self.adapter), self.unet.conv_in.weight.data_ptr(), str(self.compile_options))
        if self._video_unet_key != key:
            self._video_unet = maybe_compile(VideoUNet(self.unet, self.adapter).eval(), self.compile_options)
            self._video_unet_key = key
        return self._video_unet

    def check_inputs(self, prompt, first_frame, num_frames, height, width, guidance_scale, output_type) -> None:
        if not isinstance(prompt, str):
            raise SamplingError(f"prompt must be one string (one video per call), got {type(prompt).__name__}")
        if guidance_scale < 0:
            raise SamplingError(f"guidance_scale must be >= 0, got {guidance_scale}")
        if output_type not in ("np", "latent"):
            raise SamplingError(f"output_type must be 'np' or 'latent', got {output_type!r}")
        if first_frame is not None and (first_frame.ndim != 3 or first_frame.shape[2] != 3 or first_frame.dtype != np.uint8):
            raise SamplingError(f"first frame: expected a uint8 (H, W, 3) image, got {first_frame.dtype} "
                                f"{tuple(first_frame.shape)}")
        check_inputs(num_frames, height, width, self.vae_scale_factor, first_frame)

    @torch.no_grad()
    def __call__(
        self, prompt: str, first_frame=None, num_frames: int = 16, height: int = 320, width: int = 512,
        num_inference_steps: int = 50, guidance_scale: float = 12.5, generator: torch.Generator | None = None,
        shared_noise_alpha: float = 0.2, adain: bool = True, adain_late_fraction: float = 0.62,
        output_type: str = "np", return_dict: bool = True,
    ):
        """A video of ``prompt`` per generator (one generator: one video; a list: a batch, each
        video as its generator alone would give it).

        ``first_frame`` (uint8 (H, W, 3) array or PIL image of the video's size), when given, is
        VAE-encoded (a posterior sample, as LAMP) and is frame 1 of every step's input and of
        the result (mode *latents*); without it all frames are denoised from noise (*noise*).
        With ``adain``, LAMP's schedule: after every step frames 3..F take frame 2's latent
        statistics, from step index ``round(adain_late_fraction * steps)`` on (31 of 50 in the
        reference) frame 2 first takes frame 1's, and after the loop all take frame 1's.
        """
        # 1. Check inputs
        if first_frame is not None:
            first_frame = np.asarray(first_frame)
        self.check_inputs(prompt, first_frame, num_frames, height, width, guidance_scale, output_type)
        device = self._execution_device
        model = self.video_unet
        generators = generators_of(generator)
        b = len(generators)
        # 2. Encode the prompt (unconditional first, for classifier-free guidance)
        text = guidance_text(self.text_encoder, self.tokenizer, prompt, guidance_scale, b, device)
        # 3. Timesteps
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        timesteps = self.scheduler.timesteps
        # 4. Initial noise, shared across frames; 5. first-frame latents (each video's from its
        # own generator, noise first)
        factor = self.vae_scale_factor
        shape = (1, self.unet.config.in_channels, num_frames, height // factor, width // factor)
        latents, firsts = [], []
        for g in generators:
            latents.append(shared_noise(shape, shared_noise_alpha, g, device) * self.scheduler.init_noise_sigma)
            if first_frame is not None:
                firsts.append(encode_first_frame(self.vae, first_frame, g, device))
        latents = torch.cat(latents)
        first = torch.cat(firsts) if firsts else None
        if first is not None:
            latents[:, :, 0] = first
        # 6. Denoising loop
        late_start = round(adain_late_fraction * len(timesteps))
        for i, t in enumerate(self.progress_bar(timesteps)):
            latents = guided_step(model, self.scheduler, latents, t, text, guidance_scale)
            if first is not None:
                latents[:, :, 0] = first
            if adain:
                latents = lamp_adain_step(latents, late=i >= late_start)
        # 7. Final AdaIN, decode
        if adain:
            latents = lamp_adain_final(latents)
        frames = latents if output_type == "latent" else decode_videos(self.vae, latents, generator)
        self.maybe_free_model_hooks()
        return FirstFrameVideoPipelineOutput(frames=frames) if return_dict else (frames,)
