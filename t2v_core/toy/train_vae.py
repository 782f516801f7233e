"""The toy world's ``AutoencoderKL``: trained first, on the world's images (the subject's pixels
weighted up), so that the text-to-image model (:mod:`.train_diffusion`) learns on its latents."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import torch

from ..atomic import atomic_dir
from .train_common import (
    LossLog, finish_model_dir, folder_megabytes, seeded_generator, uint8_to_unit_range, warmup_cosine,
)
from .world import sample_images

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VaeSettings:
    image_size: int = 64
    num_images: int = 4096
    steps: int = 800
    batch_size: int = 16
    learning_rate: float = 1e-3
    #: Extra weight of the subject's pixels (the world's masks): it covers a few percent of the
    #: image, and without it the autoencoder learns the backgrounds long before the shapes.
    subject_weight: float = 10.0
    #: Weight of the KL term (per latent value) against the L1 error (per pixel value): enough
    #: to keep the latents compact and smooth for the diffusion model, small enough to be sharp.
    kl_weight: float = 1e-4
    block_out_channels: tuple = (16, 32, 64)
    log_every: int = 50



def build_vae(settings: VaeSettings):
    from diffusers import AutoencoderKL

    # Three blocks, two downsamplings: 64x64 images give 16x16 latents, as the tiny model's.
    blocks = len(settings.block_out_channels)
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=settings.block_out_channels,
        down_block_types=("DownEncoderBlock2D",) * blocks, up_block_types=("UpDecoderBlock2D",) * blocks,
        norm_num_groups=8, sample_size=settings.image_size,
    )


@torch.no_grad()
def reconstruction_error(vae, images: torch.Tensor) -> float:
    """Mean absolute error (in [0, 255] pixel units) of decode(posterior mean)."""
    recon = vae.decode(vae.encode(images).latent_dist.mode()).sample
    return float((recon.clamp(-1, 1) - images).abs().mean() * 127.5)


def train_vae(out_dir, seed: int = 0, settings: VaeSettings = VaeSettings()) -> dict:
    """Train the autoencoder on the world's images; ``scaling_factor`` = 1 / latent std."""
    images, masks, _ = sample_images(settings.num_images, settings.image_size, seed)
    images = uint8_to_unit_range(images)
    pixel_weights = 1.0 + (settings.subject_weight - 1.0) * torch.from_numpy(masks).float()[:, None]
    pixel_weights = pixel_weights / pixel_weights.mean()
    held_out = uint8_to_unit_range(sample_images(128, settings.image_size, seed + 10_000)[0])
    torch.manual_seed(seed)
    vae = build_vae(settings).train()
    optimizer = torch.optim.AdamW(vae.parameters(), lr=settings.learning_rate, weight_decay=0.0)
    schedule = warmup_cosine(optimizer, settings.steps)
    generator = seeded_generator(seed)
    initial_error = reconstruction_error(vae, held_out)
    losses = LossLog("vae", settings.steps, settings.log_every)
    for _ in range(settings.steps):
        index = torch.randint(len(images), (settings.batch_size,), generator=generator)
        batch = images[index]
        posterior = vae.encode(batch).latent_dist
        latents = posterior.sample(generator=generator)
        recon = vae.decode(latents).sample
        kl_per_value = posterior.kl().mean() / latents[0].numel()
        loss = ((recon - batch).abs() * pixel_weights[index]).mean() + settings.kl_weight * kl_per_value
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.add(float(loss.detach()))
    vae.eval()
    with torch.no_grad():
        latent_std = float(vae.encode(held_out).latent_dist.mode().std())
    # Diffusion expects unit-variance latents, as SD's 0.18215 gives for its own VAE.
    vae.register_to_config(scaling_factor=1.0 / latent_std)
    metrics = {
        "parameters": sum(p.numel() for p in vae.parameters()),
        "held_out_l1_before": round(initial_error, 3),
        "held_out_l1_after": round(reconstruction_error(vae, held_out), 3),
        "latent_std": latent_std, "scaling_factor": 1.0 / latent_std, "settings": asdict(settings),
    }
    with atomic_dir(out_dir) as work:
        vae.save_pretrained(work, safe_serialization=True)
        metrics = finish_model_dir(work, "vae", seed, losses, metrics)
    metrics["megabytes"] = round(folder_megabytes(out_dir), 2)
    return metrics
