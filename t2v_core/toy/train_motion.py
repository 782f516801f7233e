"""The toy world's pretrained motion adapter: AnimateDiff's recipe at the toy UNet's size.

A diffusers ``MotionAdapter`` (the motion modules of AnimateDiff) is trained from scratch on the
frozen toy text-to-image model, with the plain diffusion loss on every frame of clips of the
world's *pretraining* motions only (:data:`.world.PRETRAINING_MOTIONS`: moves left, moves down,
shrinks). The demo's four motions are never shown to it, as the real adapter never saw the
motions of the few-shot benchmark: the zero-shot AnimateDiff row must do without them, and
MotionLoRA must learn them from the few-shot clips.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..atomic import atomic_dir
from ..models.loading import load_base_components
from ..sampling import encode_prompt
from ..training.data import encode_clips
from .train_common import LossLog, finish_model_dir, folder_megabytes, seeded_generator, uint8_to_unit_range, warmup_cosine
from .world import PRETRAINING_MOTIONS, caption, motion_clips

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MotionAdapterSettings:
    image_size: int = 64
    #: The demo's video length; the adapter's position table (max_seq_length) allows up to 32.
    clip_frames: int = 8
    clips_per_motion: int = 128
    held_out_per_motion: int = 8
    steps: int = 3000
    #: Clips per step (AnimateDiff's motion-module training uses 4).
    batch_size: int = 4
    learning_rate: float = 1e-3
    motion_num_attention_heads: int = 4
    motion_max_seq_length: int = 32
    log_every: int = 50


def build_motion_adapter(unet, settings: MotionAdapterSettings):
    """A ``MotionAdapter`` that fits ``unet``, its output projections zeroed (AnimateDiff's
    ``zero_initialize``): before training, the video model is the image model frame by frame."""
    from diffusers import MotionAdapter

    adapter = MotionAdapter(
        block_out_channels=tuple(unet.config.block_out_channels),
        motion_layers_per_block=unet.config.layers_per_block,
        motion_num_attention_heads=settings.motion_num_attention_heads,
        motion_norm_num_groups=unet.config.norm_num_groups,
        motion_max_seq_length=settings.motion_max_seq_length,
        use_motion_mid_block=True,
    )
    for name, module in adapter.named_modules():
        if name.endswith("proj_out"):
            torch.nn.init.zeros_(module.weight)
            torch.nn.init.zeros_(module.bias)
    return adapter


def pretraining_clips(settings: MotionAdapterSettings, seed: int, count: int):
    """uint8 clips and captions of the pretraining motions (``count`` per motion)."""
    clips, captions = [], []
    for index, motion in enumerate(PRETRAINING_MOTIONS):
        for subject, frames, _ in motion_clips(motion, count, settings.clip_frames, settings.image_size,
                                               seed + 100 * (index + 1)):
            clips.append(frames)
            captions.append(caption(subject, motion))
    return clips, captions


def _encoded(parts, clips, captions):
    latents = torch.stack(encode_clips(parts["vae"], [uint8_to_unit_range(c) for c in clips], "cpu"))
    texts = encode_prompt(parts["text_encoder"], parts["tokenizer"], captions, "cpu")
    return latents, texts  # (N, 2, C, F, h, w), (N, 77, D)


def _diffusion_loss(unet, scheduler, latents, texts, generator) -> torch.Tensor:
    mean, std = latents[:, 0], latents[:, 1]
    x0 = mean + std * torch.randn(mean.shape, generator=generator)
    noise = torch.randn(x0.shape, generator=generator)
    timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (len(x0),), generator=generator)
    # UNetMotionModel takes one text embedding per frame (as AnimateDiffPipeline repeats them)
    per_frame = texts.repeat_interleave(x0.shape[2], dim=0)
    prediction = unet(scheduler.add_noise(x0, noise, timesteps), timesteps, per_frame).sample
    return F.mse_loss(prediction, noise)


@torch.no_grad()
def held_out_loss(unet, scheduler, latents, texts, seed: int) -> float:
    generator = seeded_generator(seed)
    return float(sum(_diffusion_loss(unet, scheduler, latents[i:i + 4], texts[i:i + 4], generator)
                     for i in range(0, len(latents), 4)) / -(-len(latents) // 4))


def train_motion_adapter(out_dir, base_dir, seed: int = 0,
                         settings: MotionAdapterSettings = MotionAdapterSettings()) -> dict:
    """Train the motion modules on the frozen toy base; saved as a ``MotionAdapter`` folder."""
    from diffusers import DDPMScheduler, UNetMotionModel

    parts = load_base_components(base_dir)
    scheduler = DDPMScheduler.from_config(parts["scheduler"].config)
    latents, texts = _encoded(parts, *pretraining_clips(settings, seed, settings.clips_per_motion))
    held_latents, held_texts = _encoded(parts, *pretraining_clips(settings, seed + 10_000, settings.held_out_per_motion))
    torch.manual_seed(seed)
    adapter = build_motion_adapter(parts["unet"], settings)
    unet = UNetMotionModel.from_unet2d(parts["unet"], adapter)
    unet.freeze_unet2d_params()  # only the motion modules train, as in AnimateDiff
    trainable = [p for p in unet.parameters() if p.requires_grad]
    before = held_out_loss(unet.eval(), scheduler, held_latents, held_texts, seed)
    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=1e-2)
    schedule = warmup_cosine(optimizer, settings.steps)
    generator = seeded_generator(seed)
    losses = LossLog("motion_adapter", settings.steps, settings.log_every)
    unet.train()
    for _ in range(settings.steps):
        index = torch.randint(len(latents), (settings.batch_size,), generator=generator)
        loss = _diffusion_loss(unet, scheduler, latents[index], texts[index], generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        schedule.step()
        losses.add(float(loss.detach()))
    unet.eval()
    after = held_out_loss(unet, scheduler, held_latents, held_texts, seed)
    # The trained motion modules back into the adapter, the only part that is saved.
    for target, source in ((adapter.down_blocks, unet.down_blocks), (adapter.up_blocks, unet.up_blocks)):
        for adapter_block, unet_block in zip(target, source):
            adapter_block.motion_modules.load_state_dict(unet_block.motion_modules.state_dict())
    adapter.mid_block.motion_modules.load_state_dict(unet.mid_block.motion_modules.state_dict())
    metrics = {
        "parameters": sum(p.numel() for p in adapter.parameters()),
        "pretraining_motions": list(PRETRAINING_MOTIONS), "training_clips": len(latents),
        "held_out_loss_before": round(before, 5), "held_out_loss_after": round(after, 5),
        "settings": asdict(settings),
    }
    with atomic_dir(out_dir) as work:
        adapter.save_pretrained(work, safe_serialization=True)
        metrics = finish_model_dir(work, "motion_adapter", seed, losses, metrics)
    metrics["megabytes"] = round(folder_megabytes(Path(out_dir)), 2)
    return metrics
