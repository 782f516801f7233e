"""Sampling a video for one prompt, for every method of the study.

- LAMP / Ours: :func:`sample_first_frame_video` with the fine-tuned :class:`VideoUNet`.
- Text2Video-Zero: diffusers' ``TextToVideoZeroPipeline`` (the reference implementation).
- Per-frame T2I: every frame an independent image of the base model.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

log = logging.getLogger(__name__)


class SamplingError(ValueError):
    pass


def encode_text(parts, prompts, device):
    tokenizer = parts["tokenizer"]
    tokens = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length,
                       truncation=True, return_tensors="pt")
    return parts["text_encoder"](tokens.input_ids.to(device))[0]


def shared_noise(shape, alpha: float, generator, device, dtype=torch.float32) -> torch.Tensor:
    """LAMP's initial noise (B, C, F, h, w): frame f gets alpha * noise_1 + (1 - alpha) * noise_f."""
    noise = torch.randn(shape, generator=generator, device=device, dtype=dtype)
    return alpha * noise[:, :, :1] + (1 - alpha) * noise


def match_statistics(x: torch.Tensor, style: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Give ``x`` the per-channel spatial mean and std of ``style`` (both (..., h, w)).

    As LAMP's ``adaptive_instance_normalization``: unbiased variance, ``eps`` added to it.
    """
    def stats(t):
        flat = t.flatten(-2)
        return flat.mean(-1)[..., None, None], (flat.var(-1) + eps).sqrt()[..., None, None]

    mean, std = stats(x)
    style_mean, style_std = stats(style)
    return (x - mean) / std * style_std + style_mean


def lamp_adain_step(latents: torch.Tensor, late: bool) -> torch.Tensor:
    """LAMP's per-step AdaIN on (B, C, F, h, w): frames 3..F take frame 2's statistics; in
    the late steps (``late``), frame 2 first takes frame 1's."""
    latents = latents.clone()
    if late:
        latents[:, :, 1] = match_statistics(latents[:, :, 1], latents[:, :, 0])
    latents[:, :, 2:] = match_statistics(latents[:, :, 2:], latents[:, :, 1:2])
    return latents


def lamp_adain_final(latents: torch.Tensor) -> torch.Tensor:
    """LAMP's AdaIN after the loop: every frame takes frame 1's statistics."""
    latents = latents.clone()
    latents[:, :, 1:] = match_statistics(latents[:, :, 1:], latents[:, :, :1])
    return latents


@torch.no_grad()
def encode_first_frame(vae, image: np.ndarray, generator, device) -> torch.Tensor:
    """uint8 (H, W, 3) -> scaled latent (1, C, h, w): a posterior sample, as LAMP does."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float().to(device) / 127.5 - 1.0
    return vae.encode(x.to(vae.dtype)).latent_dist.sample(generator) * vae.config.scaling_factor


@torch.no_grad()
def decode_latents(vae, latents: torch.Tensor, chunk: int = 8) -> np.ndarray:
    """(1, C, F, h, w) latents -> uint8 frames (F, H, W, 3); decoded ``chunk`` frames at a time."""
    frames = latents[0].permute(1, 0, 2, 3) / vae.config.scaling_factor
    images = torch.cat([vae.decode(frames[i:i + chunk].to(vae.dtype)).sample for i in range(0, len(frames), chunk)])
    images = ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return images.permute(0, 2, 3, 1).cpu().numpy()


def check_inputs(num_frames, height, width, vae_factor, first_frame, first_frame_name="first frame"):
    if num_frames < 2:
        raise SamplingError(f"num_frames must be >= 2, got {num_frames}")
    if height % vae_factor or width % vae_factor:
        raise SamplingError(f"height and width must be multiples of {vae_factor}, got {height}x{width}")
    if first_frame is not None and first_frame.shape[:2] != (height, width):
        raise SamplingError(
            f"{first_frame_name}: image is {first_frame.shape[1]}x{first_frame.shape[0]} (WxH), "
            f"expected {width}x{height}"
        )


def vae_scale_factor(vae) -> int:
    return 2 ** (len(vae.config.block_out_channels) - 1)


@torch.no_grad()
def sample_first_frame_video(
    model, parts: dict, prompt: str, num_frames: int, height: int, width: int,
    num_inference_steps: int, guidance_scale: float, generator: torch.Generator,
    first_frame: np.ndarray | None = None, shared_noise_alpha: float = 0.2, adain: bool = True,
    adain_late_fraction: float = 0.62, device="cpu", output_type: str = "np",
) -> np.ndarray | torch.Tensor:
    """LAMP-style sampling with a :class:`VideoUNet`; returns uint8 frames (F, H, W, 3).

    With ``first_frame`` (mode ``latents``) its VAE latent is frame 1 of every step's input
    and of the result; without it (mode ``noise``) all frames are denoised from noise.
    With ``adain``, LAMP's schedule: after every step frames 3..F take frame 2's latent
    statistics, from step index ``round(adain_late_fraction * steps)`` on (31 of 50 in the
    reference) frame 2 first takes frame 1's, and after the loop all take frame 1's.
    ``output_type="latent"`` returns the final latents (1, C, F, h, w) instead of frames.
    """
    # 1. Check inputs
    vae, scheduler = parts["vae"], parts["scheduler"]
    factor = vae_scale_factor(vae)
    check_inputs(num_frames, height, width, factor, first_frame)
    # 2. Encode the prompt (unconditional first, for classifier-free guidance)
    use_cfg = guidance_scale > 1.0
    text = encode_text(parts, [""] + [prompt] if use_cfg else [prompt], device)
    # 3. Timesteps
    scheduler.set_timesteps(num_inference_steps, device=device)
    # 4. Initial noise, shared across frames
    shape = (1, model.unet.config.in_channels, num_frames, height // factor, width // factor)
    latents = shared_noise(shape, shared_noise_alpha, generator, device) * scheduler.init_noise_sigma
    # 5. First frame latents
    first = encode_first_frame(vae, first_frame, generator, device) if first_frame is not None else None
    if first is not None:
        latents[:, :, 0] = first
    # 6. Denoising loop
    timesteps = scheduler.timesteps
    late_start = round(adain_late_fraction * len(timesteps))
    for i, t in enumerate(timesteps):
        model_input = torch.cat([latents] * 2) if use_cfg else latents
        noise_pred = model(scheduler.scale_model_input(model_input, t), t, text)
        if use_cfg:
            uncond, cond = noise_pred.chunk(2)
            noise_pred = uncond + guidance_scale * (cond - uncond)
        latents = scheduler.step(noise_pred, t, latents).prev_sample
        if first is not None:
            latents[:, :, 0] = first
        if adain:
            latents = lamp_adain_step(latents, late=i >= late_start)
    # 7. Final AdaIN, decode
    if adain:
        latents = lamp_adain_final(latents)
    return latents if output_type == "latent" else decode_latents(vae, latents)


def _to_uint8(images) -> np.ndarray:
    images = np.asarray(images)
    return (np.clip(images, 0, 1) * 255).round().astype(np.uint8)


def _diffusers_pipeline(cls, parts, device):
    """A diffusers pipeline of class ``cls`` over the already loaded base components."""
    pipe = cls(
        vae=parts["vae"], text_encoder=parts["text_encoder"], tokenizer=parts["tokenizer"],
        unet=parts["unet"], scheduler=parts["scheduler"], safety_checker=None,
        feature_extractor=None, requires_safety_checker=False,
    ).to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def sample_text2video_zero(parts, prompt, num_frames, height, width, num_inference_steps,
                           guidance_scale, t0, t1, motion_field_strength_x, motion_field_strength_y,
                           generator, device="cpu") -> np.ndarray:
    """Text2Video-Zero through diffusers' reference ``TextToVideoZeroPipeline``."""
    from diffusers import TextToVideoZeroPipeline

    pipe = _diffusers_pipeline(TextToVideoZeroPipeline, parts, device)
    result = pipe(
        prompt=prompt, video_length=num_frames, height=height, width=width,
        num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, t0=t0, t1=t1,
        motion_field_strength_x=motion_field_strength_x, motion_field_strength_y=motion_field_strength_y,
        generator=generator, output_type="np",
    )
    return _to_uint8(result.images)


def sample_per_frame_t2i(parts, prompt, num_frames, height, width, num_inference_steps,
                         guidance_scale, generator, device="cpu") -> np.ndarray:
    """Every frame sampled independently by the base text-to-image model."""
    from diffusers import StableDiffusionPipeline

    pipe = _diffusers_pipeline(StableDiffusionPipeline, parts, device)
    result = pipe(
        prompt=prompt, height=height, width=width, num_inference_steps=num_inference_steps,
        guidance_scale=guidance_scale, num_images_per_prompt=num_frames, generator=generator,
        output_type="np",
    )
    return _to_uint8(result.images)


def load_first_frame(path, height: int, width: int) -> np.ndarray:
    """The first-frame image resized to (height, width); another aspect ratio is an error."""
    from PIL import Image

    with Image.open(path) as image:
        w, h = image.size
        if abs(w / h - width / height) > 0.01:
            raise SamplingError(
                f"{path}: first-frame image is {w}x{h} (WxH), whose aspect ratio differs from "
                f"the video's {width}x{height}"
            )
        image = image.convert("RGB")
        if (w, h) != (width, height):
            image = image.resize((width, height), Image.BICUBIC)
        return np.asarray(image)


def sample_method_videos(
    method: str, base_dir, prompt: str, seeds: list[int], video: dict, sampling: dict,
    outputs: dict[int, dict[str, str]], adapter_dir=None, first_frame_path=None, device="cpu",
) -> None:
    """All seeds of one (method, prompt): the models load once; for every seed an mp4 and a
    GIF are written to ``outputs[seed]["mp4"]`` / ``["gif"]``."""
    from .config import FIRST_FRAME_OF_METHOD
    from .models.loading import load_base_components
    from .video_io import write_gif, write_mp4
    from .video_unet import TemporalAdapter, VideoUNet

    parts = load_base_components(base_dir, device=device)
    settings = sampling[method]
    size = dict(num_frames=video["num_frames"], height=video["height"], width=video["width"],
                num_inference_steps=sampling["num_inference_steps"], guidance_scale=settings["guidance_scale"])
    model = first_frame = None
    if method in FIRST_FRAME_OF_METHOD:
        adapter = TemporalAdapter.from_pretrained(adapter_dir).to(device).eval()
        model = VideoUNet(parts["unet"], adapter).eval()
        if FIRST_FRAME_OF_METHOD[method] == "latents":
            first_frame = load_first_frame(first_frame_path, video["height"], video["width"])
    for seed in seeds:
        generator = torch.Generator(device).manual_seed(seed)
        if method == "text2video_zero":
            extra = {k: settings[k] for k in ("t0", "t1", "motion_field_strength_x", "motion_field_strength_y")}
            frames = sample_text2video_zero(parts, prompt, generator=generator, device=device, **size, **extra)
        elif method == "per_frame_t2i":
            frames = sample_per_frame_t2i(parts, prompt, generator=generator, device=device, **size)
        else:
            frames = sample_first_frame_video(
                model, parts, prompt, generator=generator, first_frame=first_frame,
                shared_noise_alpha=settings["shared_noise_alpha"], adain=settings["adain"],
                adain_late_fraction=settings["adain_late_fraction"],
                device=device, **size,
            )
        write_mp4(outputs[seed]["mp4"], frames, fps=video["fps"])
        write_gif(outputs[seed]["gif"], frames, fps=video["fps"])
        log.info("%s seed %d: %s", method, seed, outputs[seed]["mp4"])
