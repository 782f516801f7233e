"""The pieces that the methods' samplers share: prompt encoding, LAMP's shared noise and AdaIN
schedule, first-frame encoding, chunked decoding, input checks, and diffusers pipelines over
already loaded components. Each method's sampler is in its module of :mod:`t2v_core.methods`.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

log = logging.getLogger(__name__)


class SamplingError(ValueError):
    pass


@torch.no_grad()
def warn_if_truncated(tokenizer, prompts: list[str]) -> None:
    """Log a warning for each prompt longer than the text encoder reads (77 tokens for CLIP):
    what it drops would be lost silently."""
    limit = tokenizer.model_max_length
    for prompt in dict.fromkeys(prompts):
        ids = tokenizer(prompt, truncation=False).input_ids
        if len(ids) > limit:
            dropped = tokenizer.decode(ids[limit - 1:-1]).strip()
            log.warning("prompt %r is %d tokens long, the text encoder reads %d: %r is ignored",
                        prompt, len(ids), limit, dropped)


def encode_prompt(text_encoder, tokenizer, prompts: list[str], device) -> torch.Tensor:
    """CLIP text embeddings (N, 77, D) of ``prompts``, padded to the tokenizer's length (a
    longer prompt is cut, with a warning)."""
    warn_if_truncated(tokenizer, prompts)
    tokens = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length,
                       truncation=True, return_tensors="pt")
    return text_encoder(tokens.input_ids.to(device))[0]


def generators_of(generator) -> list:
    """A pipeline's ``generator`` argument as one generator per video: a list stays a list (a
    batch of videos, one seed each); one generator, or None, is one video."""
    return list(generator) if isinstance(generator, (list, tuple)) else [generator]


def batch_randn(shape, generators: list, device, dtype=torch.float32) -> torch.Tensor:
    """Noise of ``shape`` per video, stacked on dim 0: video i's part is drawn from
    ``generators[i]`` (on the generator's device) exactly as a batch of one would draw it, so a
    seed gives the same video alone or in a batch."""
    parts = [torch.randn(shape, generator=g, device=g.device if g is not None else device, dtype=dtype)
             for g in generators]
    return torch.cat(parts).to(device)


def maybe_compile(model: torch.nn.Module, options: dict | None):
    """``model`` itself, or ``torch.compile(model, **options)`` when options are given (see
    runtime.compile_options: the sampling jobs' ``performance.compile``)."""
    if options is None:
        return model
    log.info("compiling %s with %s (the first calls include the compile time)", type(model).__name__, options)
    return torch.compile(model, **options)


def guidance_text(text_encoder, tokenizer, prompt: str, guidance_scale: float, videos: int, device) -> torch.Tensor:
    """The text embeddings of a batch of ``videos`` videos of one prompt: the unconditional ones
    of every video, then the conditional ones, for classifier-free guidance (``guidance_scale``
    > 1); the conditional ones alone without it."""
    prompts = ["", prompt] if guidance_scale > 1.0 else [prompt]
    return encode_prompt(text_encoder, tokenizer, prompts, device).repeat_interleave(videos, dim=0)


def guided_step(model, scheduler, latents: torch.Tensor, t, text: torch.Tensor, guidance_scale: float):
    """One denoising step of ``scheduler`` on (B, C, F, h, w) ``latents``: the noise predicted
    by ``model`` for the unconditional and conditional halves of one batched call, combined by
    classifier-free guidance when ``guidance_scale`` > 1 (``text`` from :func:`guidance_text`)."""
    use_cfg = guidance_scale > 1.0
    model_input = torch.cat([latents] * 2) if use_cfg else latents
    noise_pred = model(scheduler.scale_model_input(model_input, t), t, text)
    if use_cfg:
        uncond, cond = noise_pred.chunk(2)
        noise_pred = uncond + guidance_scale * (cond - uncond)
    return scheduler.step(noise_pred, t, latents).prev_sample


def decode_videos(vae, latents: torch.Tensor, generator) -> np.ndarray:
    """(B, C, F, h, w) latents -> uint8 (B, F, H, W, 3), or (F, H, W, 3) when the pipeline was
    given one generator rather than a list (one video)."""
    frames = np.stack([decode_latents(vae, latents[i:i + 1]) for i in range(len(latents))])
    return frames if isinstance(generator, (list, tuple)) else frames[0]


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


def to_uint8(images) -> np.ndarray:
    """Float images in [0, 1] (a diffusers pipeline's "np" output) -> uint8."""
    images = np.asarray(images)
    return (np.clip(images, 0, 1) * 255).round().astype(np.uint8)


def diffusers_pipeline(cls, parts, device):
    """A diffusers pipeline of class ``cls`` over the already loaded base components."""
    pipe = cls(
        vae=parts["vae"], text_encoder=parts["text_encoder"], tokenizer=parts["tokenizer"],
        unet=parts["unet"], scheduler=parts["scheduler"], safety_checker=None,
        feature_extractor=None, requires_safety_checker=False,
    ).to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_first_frame(path, height: int, width: int) -> np.ndarray:
    """The first-frame image resized to (height, width); one that cannot be decoded, or of
    another aspect ratio, is an error naming the file (see validate_first_frame)."""
    from PIL import Image

    from .data.validation import DataError, validate_first_frame

    try:
        image = validate_first_frame(path, height, width)
    except DataError as error:
        raise SamplingError(str(error)) from error
    if image.size != (width, height):
        image = image.resize((width, height), Image.BICUBIC)
    return np.array(image)  # writable: torch.from_numpy warns on a read-only array


def match_histograms_to_first_frame(frames: np.ndarray) -> np.ndarray:
    """LAMP's post-processing (its inference script): every frame after the first gets, channel
    by channel, the first frame's histogram. Each value v of a frame maps to the smallest value
    u whose cumulative share in the first frame is at least v's cumulative share in the frame.

    ``frames``: uint8 (F, H, W, 3); returns a new uint8 array, frame 1 unchanged. Shares are
    compared as integer counts (both frames have the same number of pixels): where the running
    counts tie, the tied value is chosen. The script sums float densities, which round either
    way at ties; at the top a sum just under 1 sends the frame's brightest value to 255.
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4:
        raise SamplingError(f"histogram matching needs uint8 (F, H, W, C) frames, got {frames.dtype} {frames.shape}")
    out = frames.copy()
    first = frames[0]
    for channel in range(frames.shape[3]):
        reference = np.cumsum(np.bincount(first[..., channel].ravel(), minlength=256))
        for index in range(1, len(frames)):
            values = frames[index, ..., channel]
            shares = np.cumsum(np.bincount(values.ravel(), minlength=256))
            mapping = np.clip(np.searchsorted(reference, shares, side="left"), 0, 255).astype(np.uint8)
            out[index, ..., channel] = mapping[values]
    return out
