"""The demo's fine-tuning step against the hardware: the toy world's video UNet (its shipped
text-to-image UNet + a temporal adapter, 8 frames of its latent grid, forward and backward to the
adapter) and the plain 2D UNet on the same frames (forward and backward to its input), FLOPs by
torch's FLOP counter, time as the faster of two interleaved medians, and the GEMM peak at the
same thread count. On a CPU both run on one thread, as a demo fine-tuning job does
(``threads: 1``), so the peak they are held against is one thread's.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from t2v_core.toy import toy_model_dir
from t2v_core.video_unet import TemporalAdapter, VideoUNet

from .common import gemm_peak, sync

NUM_FRAMES = 8


def _flops(step) -> int:
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def _interleaved_medians(steps: dict, device, repeats: int, rounds: int = 2) -> dict:
    """Per step, the faster of ``rounds`` medians of ``repeats`` timings, the steps alternating
    so that a slow spell of a shared machine falls on both."""
    best = {name: float("inf") for name in steps}
    for _ in range(rounds):
        times = {name: [] for name in steps}
        for i in range(repeats):
            for name, step in (list(steps.items()) if i % 2 == 0 else list(steps.items())[::-1]):
                sync(device)
                start = time.perf_counter()
                step()
                sync(device)
                times[name].append(time.perf_counter() - start)
        for name, values in times.items():
            best[name] = min(best[name], statistics.median(values))
    return best


def bench_toy_step(device: str, repeats: int = 15, warmup: int = 3) -> dict:
    from diffusers import UNet2DConditionModel

    cpu = not device.startswith("cuda")
    threads = torch.get_num_threads()
    if cpu:
        torch.set_num_threads(1)
    try:
        unet = UNet2DConditionModel.from_pretrained(toy_model_dir("base") / "unet").to(device).requires_grad_(False)
        torch.manual_seed(0)
        adapter = TemporalAdapter.from_unet(unet).to(device)
        with torch.no_grad():  # a trained adapter's branches are not zero: no shortcut flatters the step
            for parameter in adapter.parameters():
                parameter.add_(torch.randn_like(parameter) * 0.02)
        video = VideoUNet(unet, adapter)
        adapter.requires_grad_(False)
        for _, parameter in adapter.trainable_parameters():
            parameter.requires_grad_(True)
        generator = torch.Generator().manual_seed(0)
        channels, latent_size = unet.config.in_channels, unet.config.sample_size
        latents = torch.randn(1, channels, NUM_FRAMES, latent_size, latent_size, generator=generator).to(device)
        text = torch.randn(1, 77, unet.config.cross_attention_dim, generator=generator).to(device)
        frames = latents[0].transpose(0, 1).contiguous().requires_grad_(True)
        timestep = torch.tensor([500], device=device)

        def video_step():
            video(latents, timestep, text).square().mean().backward()

        def plain_step():
            unet(frames, timestep.repeat(NUM_FRAMES), encoder_hidden_states=text.repeat(NUM_FRAMES, 1, 1)
                 ).sample.square().mean().backward()

        steps = {"video": video_step, "plain_2d": plain_step}
        flops = {name: _flops(step) for name, step in steps.items()}
        for _ in range(warmup):
            for step in steps.values():
                step()
        seconds = _interleaved_medians(steps, device, repeats)
        peak = gemm_peak(device)
    finally:
        torch.set_num_threads(threads)
    achieved = {name: flops[name] / seconds[name] for name in steps}
    return {"threads": 1 if cpu else None, "num_frames": NUM_FRAMES, "latent_size": latent_size,
            "flops": flops, "step_s": seconds, "flops_per_s": achieved, "gemm_peak_flops_per_s": peak["flops_per_s"],
            "fraction_of_peak": {name: value / peak["flops_per_s"] for name, value in achieved.items()},
            "time_ratio": seconds["video"] / seconds["plain_2d"], "flop_ratio": flops["video"] / flops["plain_2d"]}
