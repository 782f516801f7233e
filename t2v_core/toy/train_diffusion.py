"""The toy world's text-to-image model: a latent diffusion model (``UNet2DConditionModel`` +
``CLIPTextModel``) on the latents of its ``AutoencoderKL`` (:mod:`.train_vae`), saved as
tiny.py saves SD.

The text encoder is trained jointly with the UNet, from scratch, by the diffusion loss alone:
the captions have a dozen distinct words, which a 2-layer encoder learns in a few hundred
steps, and no contrastive stage is needed for the UNet to be conditioned on them.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..grids import contact_sheet
from ..atomic import atomic_dir
from ..models.tiny import SD_SCHEDULER_CONFIG
from ..sampling import vae_scale_factor
from ..models.tokenizer import write_clip_tokenizer_files
from ..training.data import encode_clips
from ..video_io import write_png
from .train_common import (
    STORAGE_DTYPE, LossLog, all_subjects, finish_model_dir, folder_megabytes, seeded_generator,
    uint8_to_unit_range, warmup_cosine,
)
from .world import BACKGROUNDS, COLOURS, MOTIONS, SHAPES, caption, motion_clips, sample_images

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TextToImageSettings:
    image_size: int = 64
    num_images: int = 6144
    #: Clips per motion whose frames are added with their motion captions, so that prompts
    #: such as "a red circle moves right on a black background" are known to the model too.
    motion_clips_per_motion: int = 64
    motion_clip_frames: int = 8
    steps: int = 3000
    batch_size: int = 32
    learning_rate: float = 1e-3
    caption_dropout: float = 0.1
    #: Std of a per-image, per-channel constant added to the noise ("offset noise"). With SD's
    #: schedule the noisiest training inputs still hold the latents' mean, which sampling from
    #: pure noise lacks, and the model then makes every background grey; this teaches it to set
    #: the mean itself, from the prompt (black, white and grey backgrounds).
    noise_offset: float = 0.2
    #: Measured against leaner worlds (one thread): (16, 32) made the video fine-tuning step 1.7x
    #: and the sampling call 1.5x cheaper, the demo's workflow 1.45x faster (850 -> 588 s on 2
    #: cores, same machine and day), but LAMP's and Ours (Latents)' motion-correct % fell to 25
    #: and 33 (from 46 and 54) and MotionLoRA's below AnimateDiff's. 8x8 latents made both steps
    #: 2.1x cheaper, but a VAE downsampling 8x drew small triangles and stars as blobs, which
    #: neither spin nor tell the shapes apart.
    block_out_channels: tuple = (32, 64)
    text_width: int = 32
    ema_max_decay: float = 0.999
    #: The check after training: every subject once, DDIM with classifier-free guidance.
    sample_steps: int = 25
    guidance_scale: float = 7.5
    samples_per_prompt: int = 2
    log_every: int = 50


def build_text_to_image(settings: TextToImageSettings, latent_size: int):
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    width = settings.text_width
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=width, intermediate_size=4 * width, num_attention_heads=4,
        num_hidden_layers=2, max_position_embeddings=77, bos_token_id=49406, eos_token_id=49407,
        pad_token_id=49407, projection_dim=width,
    ))
    # Attention only at the second level (and the middle): on a CPU, attention over the full
    # latent grid costs more than the rest of the UNet, and the coarse level is where colour and
    # shape are decided.
    # (diffusers' legacy naming: attention_head_dim is the number of heads.)
    unet = UNet2DConditionModel(
        sample_size=latent_size, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=settings.block_out_channels,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=width, attention_head_dim=2, norm_num_groups=16,
    )
    return unet, text_encoder


def training_pairs(settings: TextToImageSettings, seed: int):
    """uint8 images and their captions: still images, plus frames of motion clips with motion captions."""
    images, _, captions = sample_images(settings.num_images, settings.image_size, seed)
    frames, frame_captions = [images], list(captions)
    for index, motion in enumerate(MOTIONS):
        for subject, clip, _ in motion_clips(motion, settings.motion_clips_per_motion, settings.motion_clip_frames,
                                             settings.image_size, seed + 1000 * (index + 1)):
            frames.append(clip)
            frame_captions += [caption(subject, motion)] * len(clip)
    return np.concatenate(frames), frame_captions


def tokenize(tokenizer, prompts) -> torch.Tensor:
    return tokenizer(list(prompts), padding="max_length", max_length=tokenizer.model_max_length,
                     truncation=True, return_tensors="pt").input_ids


def diffusion_loss(unet, text_encoder, scheduler, latents, token_ids, noise, timesteps) -> torch.Tensor:
    """Epsilon-prediction MSE of SD's training objective."""
    noisy = scheduler.add_noise(latents, noise, timesteps)
    prediction = unet(noisy, timesteps, text_encoder(token_ids)[0]).sample
    return F.mse_loss(prediction, noise)


def train_text_to_image(out_dir, vae_dir, seed: int = 0, settings: TextToImageSettings = TextToImageSettings(),
                        clip_dir=None) -> dict:
    """Latent diffusion on the frozen VAE's latents; saved as a ``StableDiffusionPipeline`` folder."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline
    from diffusers.training_utils import EMAModel
    from transformers import CLIPTokenizer

    vae = AutoencoderKL.from_pretrained(vae_dir).eval().requires_grad_(False)
    images, captions = training_pairs(settings, seed)
    # The posterior of every image once (mean, std), sampled at each step, as the fine-tuning loop does.
    posterior = encode_clips(vae, [uint8_to_unit_range(images)], "cpu", batch_size=64)[0].transpose(1, 2)
    latent_mean, latent_std = posterior[0], posterior[1]
    with atomic_dir(out_dir) as work:
        write_clip_tokenizer_files(work / "tokenizer")
        tokenizer = CLIPTokenizer.from_pretrained(work / "tokenizer")
        token_ids, empty_ids = tokenize(tokenizer, captions), tokenize(tokenizer, [""])[0]
        scheduler = DDIMScheduler(**SD_SCHEDULER_CONFIG)
        torch.manual_seed(seed)
        unet, text_encoder = build_text_to_image(settings, settings.image_size // vae_scale_factor(vae))
        parameters = list(unet.parameters()) + list(text_encoder.parameters())
        optimizer = torch.optim.AdamW(parameters, lr=settings.learning_rate, weight_decay=1e-2)
        schedule = warmup_cosine(optimizer, settings.steps)
        # An average of the weights over the last ~hundreds of steps samples much better than the
        # last weights after so short a training (decay warms up as (1 + step) / (10 + step)).
        ema = EMAModel(parameters, decay=settings.ema_max_decay, use_ema_warmup=False)
        generator = seeded_generator(seed)
        evaluation = fixed_evaluation_batch(latent_mean, token_ids, seed)
        initial_eval_loss = evaluation_loss(unet, text_encoder, scheduler, evaluation)
        losses = LossLog("text-to-image", settings.steps, settings.log_every)
        unet.train(), text_encoder.train()
        for _ in range(settings.steps):
            index = torch.randint(len(latent_mean), (settings.batch_size,), generator=generator)
            mean, std = latent_mean[index], latent_std[index]
            latents = mean + std * torch.randn(mean.shape, generator=generator)
            ids = token_ids[index].clone()
            # Empty prompts teach the unconditional prediction that classifier-free guidance needs.
            ids[torch.rand(len(ids), generator=generator) < settings.caption_dropout] = empty_ids
            noise = torch.randn(latents.shape, generator=generator)
            noise = noise + settings.noise_offset * torch.randn(*latents.shape[:2], 1, 1, generator=generator)
            timesteps = torch.randint(scheduler.config.num_train_timesteps, (len(ids),), generator=generator)
            loss = diffusion_loss(unet, text_encoder, scheduler, latents, ids, noise, timesteps)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, 1.0)
            optimizer.step()
            schedule.step()
            ema.step(parameters)
            losses.add(float(loss.detach()))
        ema.copy_to(parameters)
        unet.eval(), text_encoder.eval()
        pipeline = StableDiffusionPipeline(
            vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
            safety_checker=None, feature_extractor=None, requires_safety_checker=False,
        )
        pipeline.set_progress_bar_config(disable=True)
        metrics = {
            "unet_parameters": sum(p.numel() for p in unet.parameters()),
            "text_encoder_parameters": sum(p.numel() for p in text_encoder.parameters()),
            "training_pairs": len(captions),
            "eval_loss_before": initial_eval_loss,
            "eval_loss_after": evaluation_loss(unet, text_encoder, scheduler, evaluation),
            "settings": asdict(settings),
        }
        if settings.samples_per_prompt > 0:
            metrics["generation"] = check_generated_images(pipeline, settings, seed, work / "samples.png", clip_dir)
        pipeline.save_pretrained(work, safe_serialization=True)
        text_encoder.to(STORAGE_DTYPE).save_pretrained(work / "text_encoder", safe_serialization=True)
        metrics = finish_model_dir(work, "base", seed, losses, metrics)
    metrics["megabytes"] = round(folder_megabytes(out_dir), 2)
    return metrics


def fixed_evaluation_batch(latent_mean, token_ids, seed: int, size: int = 64) -> dict:
    """The same latents, captions, noise and timesteps before and after training: a loss
    comparison without the noise of random timesteps."""
    generator = seeded_generator(seed + 1)
    index = torch.randperm(len(latent_mean), generator=generator)[:size]
    latents = latent_mean[index]
    return {"latents": latents, "ids": token_ids[index], "noise": torch.randn(latents.shape, generator=generator),
            "timesteps": torch.linspace(0, 999, len(index)).long()}


@torch.no_grad()
def evaluation_loss(unet, text_encoder, scheduler, batch: dict) -> float:
    return float(diffusion_loss(unet, text_encoder, scheduler, batch["latents"], batch["ids"], batch["noise"],
                                batch["timesteps"]))


def nearest_name(palette: dict, rgb: np.ndarray) -> str:
    return min(palette, key=lambda name: float(np.linalg.norm(np.asarray(palette[name], float) - rgb)))


def image_colours(image: np.ndarray, min_distance: float = 80.0, min_fraction: float = 0.01):
    """(colour or None, background) named from pixel statistics of a uint8 (H, W, 3) image.

    The background is the named one nearest the median border pixel; the subject is the
    pixels farther than ``min_distance`` from it, named by their median colour (None if they
    cover less than ``min_fraction`` of the image).
    """
    pixels = image.astype(np.float64)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    background = nearest_name(BACKGROUNDS, np.median(border, axis=0))
    foreground = np.linalg.norm(pixels - np.asarray(BACKGROUNDS[background], float), axis=-1) > min_distance
    if foreground.mean() < min_fraction:
        return None, background
    return nearest_name(COLOURS, np.median(pixels[foreground], axis=0)), background


def check_generated_images(pipeline, settings: TextToImageSettings, seed: int, png_path: Path, clip_dir=None) -> dict:
    """Generate every subject's caption ``samples_per_prompt`` times (DDIM, guidance); the rate
    at which the subject's colour and the background match the prompt; a PNG grid to look at
    (rows: colour x background; columns: circle, square, triangle, star, each per sample)."""
    subjects = all_subjects()
    prompts = [caption(subject) for subject in subjects]
    samples = []
    for k in range(settings.samples_per_prompt):
        output = pipeline(prompts, num_inference_steps=settings.sample_steps, guidance_scale=settings.guidance_scale,
                          generator=torch.Generator().manual_seed(seed + k), output_type="np")
        samples.append((output.images * 255).round().astype(np.uint8))
    samples = np.stack(samples, axis=1)  # (subjects, samples, H, W, 3)
    found = [image_colours(image) for per_subject in samples for image in per_subject]
    expected = [(s.colour, s.background) for s in subjects for _ in range(settings.samples_per_prompt)]
    colour_ok = np.array([f[0] == e[0] for f, e in zip(found, expected)])
    background_ok = np.array([f[1] == e[1] for f, e in zip(found, expected)])
    metrics = {"images": len(found), "colour_match": float(colour_ok.mean()),
               "background_match": float(background_ok.mean()), "both_match": float((colour_ok & background_ok).mean()),
               "sample_steps": settings.sample_steps, "guidance_scale": settings.guidance_scale}
    if clip_dir is not None and Path(clip_dir).exists():
        from .train_clip import zero_shot_accuracy

        flat = samples.reshape(-1, *samples.shape[2:])
        labels = [subject for subject in subjects for _ in range(settings.samples_per_prompt)]
        metrics["toy_clip_zero_shot"] = zero_shot_accuracy(clip_dir, flat, labels)
    rows, labels = [], []
    for start in range(0, len(subjects), len(SHAPES)):
        rows.append(samples[start:start + len(SHAPES)].reshape(-1, *samples.shape[2:]))
        labels.append(f"{subjects[start].colour} on {subjects[start].background}")
    write_png(png_path, contact_sheet(rows, labels, frames_per_row=rows[0].shape[0]))
    return metrics
