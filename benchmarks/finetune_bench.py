"""Fine-tuning step: ours (cached VAE posterior + cached text embedding, SDPA attention,
i.e. what :func:`t2v_core.training.loop.train_adapter` does per step) against a reference-style
step (VAE encode of the clip and text encoder every step, diffusers' classic ``AttnProcessor``);
and, beside them, MotionLoRA's step on AnimateDiff's motion modules.

Run as a subprocess by ``python -m benchmarks`` (one fresh process, ``MALLOC_MMAP_THRESHOLD_``
set, so the CPU memory probe sees freed tensors leave):

    python -m benchmarks.finetune_bench --size auto --device cpu --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from t2v_core.sampling import encode_prompt
from t2v_core.training.data import encode_clips
from t2v_core.training.loop import first_frame_conditioned_input, masked_diffusion_loss
from t2v_core.video_unet import FirstFrameAttnProcessor, TemporalAdapter, VideoUNet

from .common import PeakMemory, build_parts, device_info, settings, sync

#: On CPU, ``--size auto`` keeps the SD-1.4 architecture if one of our steps is faster than this.
AUTO_LIMIT_S = 20.0
PROMPT = "a horse runs on the grass"


def set_attention(model: VideoUNet, classic: bool) -> None:
    """Classic ``AttnProcessor`` (reference style) or ``AttnProcessor2_0`` (SDPA, diffusers'
    default) on every attention of the UNet and of the adapter's temporal attentions. The
    first-frame self-attention (ours, SDPA) is the model itself and is kept in both."""
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    make = AttnProcessor if classic else AttnProcessor2_0
    processors = {name: p if isinstance(p, FirstFrameAttnProcessor) else make()
                  for name, p in model.unet.attn_processors.items()}
    model.unet.set_attn_processor(processors)
    if model.adapter is not None:
        for temporal in model.adapter.temporal_attentions.values():
            temporal.attn.set_processor(make())


def our_loss(model, scheduler, cached, text, noise, timestep, eps):
    """Loss of one step from the cached posterior (2, C, F, h, w) and the cached text
    embedding; ``eps`` (C, F, h, w) draws the posterior sample."""
    mean, std = cached
    x0 = (mean + std * eps)[None]
    noisy = first_frame_conditioned_input(scheduler, x0, noise, timestep)
    return masked_diffusion_loss(model(noisy, timestep, text), noise)


def reference_loss(model, parts, frames, prompt, noise, timestep, eps):
    """Loss of one step as LAMP's reference computes it: the clip's frames (F, 3, H, W)
    VAE-encoded and the prompt text-encoded at every step, ``latent_dist.sample()`` style."""
    vae = parts["vae"]
    device = frames.device
    tokenizer = parts["tokenizer"]
    tokens = tokenizer([prompt], padding="max_length", max_length=tokenizer.model_max_length,
                       truncation=True, return_tensors="pt")
    text = parts["text_encoder"](tokens.input_ids.to(device))[0]
    posterior = vae.encode(frames.to(vae.dtype)).latent_dist
    latents = (posterior.mean + posterior.std * eps.permute(1, 0, 2, 3)) * vae.config.scaling_factor
    x0 = latents.permute(1, 0, 2, 3)[None].float()
    noisy = first_frame_conditioned_input(parts["scheduler"], x0, noise, timestep)
    return masked_diffusion_loss(model(noisy, timestep, text), noise)


def encoding_seconds(parts, frames, device, repeats=3) -> float:
    """Median time of what the reference recomputes at every step and ours caches: the text
    encoder on the prompt and the VAE encoder on the clip."""
    tokenizer = parts["tokenizer"]
    tokens = tokenizer([PROMPT], padding="max_length", max_length=tokenizer.model_max_length,
                       truncation=True, return_tensors="pt").input_ids.to(device)
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        with torch.no_grad():
            parts["text_encoder"](tokens)
            parts["vae"].encode(frames.to(parts["vae"].dtype))
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def optimiser_step(loss, optimizer, trainable) -> float:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(trainable, 1.0)
    optimizer.step()
    return float(loss.detach())


def setup(parts, num_frames, height, width, device, seed=0):
    """The video model, its optimiser and one synthetic clip, as train_adapter sets them up."""
    generator = torch.Generator().manual_seed(seed)
    frames = (torch.rand(num_frames, 3, height, width, generator=generator) * 2 - 1).to(device)
    torch.manual_seed(seed)
    adapter = TemporalAdapter.from_unet(parts["unet"]).to(device)
    model = VideoUNet(parts["unet"], adapter).to(device)
    adapter.requires_grad_(False)
    trainable = [p for _, p in adapter.trainable_parameters()]
    for p in trainable:
        p.requires_grad_(True)
    adapter.train()
    optimizer = torch.optim.AdamW(trainable, lr=1e-5, weight_decay=1e-2)
    return model, optimizer, trainable, frames


def step_inputs(cached, scheduler, device, generator):
    shape = cached.shape[1:]
    eps = torch.randn(shape, generator=generator).to(device)
    noise = torch.randn((1, *shape), generator=generator).to(device)
    timestep = torch.randint(0, scheduler.config.num_train_timesteps, (1,), generator=generator).to(device)
    return noise, timestep, eps


def _autocast(fn, dtype):
    with torch.autocast("cuda", dtype=dtype):
        return fn()


def run(size: str, device: str) -> dict:
    cuda = device.startswith("cuda")
    chosen = "full" if size == "auto" else size
    result = {"requested_size": size}
    while True:
        cfg = settings(chosen, cuda)
        print(f"[finetune] building {chosen} model ({cfg['num_frames']}x{cfg['height']}x{cfg['width']})", flush=True)
        t = time.perf_counter()
        parts = build_parts(chosen, device)
        model, optimizer, trainable, frames = setup(parts, cfg["num_frames"], cfg["height"], cfg["width"], device)
        result["build_s"] = time.perf_counter() - t
        scheduler = parts["scheduler"]
        t = time.perf_counter()
        cached = encode_clips(parts["vae"], [frames.cpu()], device)[0].to(device)
        text = encode_prompt(parts["text_encoder"], parts["tokenizer"], [PROMPT], device)
        sync(device)
        result["cache_once_s"] = time.perf_counter() - t
        generator = torch.Generator().manual_seed(1)

        def ours():
            set_attention(model, classic=False)
            return optimiser_step(our_loss(model, scheduler, cached, text, *step_inputs(cached, scheduler, device, generator)),
                                  optimizer, trainable)

        def reference():
            set_attention(model, classic=True)
            return optimiser_step(reference_loss(model, parts, frames, PROMPT,
                                                 *step_inputs(cached, scheduler, device, generator)),
                                  optimizer, trainable)

        if cuda:
            # reference: the paper config's former setting, fp16 autocast with gradient
            # checkpointing; ours: what finetune's auto settings pick where a step fits in the
            # GPU's memory, bf16 autocast without checkpointing
            model.unet.train()
            plain_ours, plain_reference = ours, reference

            def ours():
                model.unet.disable_gradient_checkpointing()
                return _autocast(plain_ours, torch.bfloat16)

            def reference():
                model.unet.enable_gradient_checkpointing()
                return _autocast(plain_reference, torch.float16)
        warm = []
        for _ in range(cfg["warmup"]):
            for fn in (ours, reference):
                sync(device)
                t = time.perf_counter()
                fn()
                sync(device)
                warm.append(time.perf_counter() - t)
        our_warm = warm[-2]
        print(f"[finetune] warm-up done, last step of ours {our_warm:.2f} s", flush=True)
        if size == "auto" and not cuda and chosen == "full" and our_warm > AUTO_LIMIT_S:
            result["fallback"] = f"SD-1.4 step took {our_warm:.1f} s > {AUTO_LIMIT_S} s: tiny model used"
            del model, optimizer, parts
            chosen = "small"
            continue
        break
    times = {"ours": [], "reference": []}
    peaks = {"ours": 0, "reference": 0}
    probe = PeakMemory(device)
    for i in range(cfg["steps"]):
        order = (("ours", ours), ("reference", reference))
        for name, fn in (order if i % 2 == 0 else order[::-1]):  # alternate to cancel drift
            with PeakMemory(device) as memory:
                sync(device)
                t = time.perf_counter()
                fn()
                sync(device)
                times[name].append(time.perf_counter() - t)
            peaks[name] = max(peaks[name], memory.peak_delta)
            print(f"[finetune] step {i + 1} {name}: {times[name][-1]:.2f} s, "
                  f"peak +{memory.peak_delta / 2**20:.0f} MiB", flush=True)
    # medians: a shared CPU's occasional slow step should not decide the ratio
    mean = {k: statistics.median(v) for k, v in times.items()}
    result["per_step_encoding_s"] = encoding_seconds(parts, frames, device)
    result.update(
        size=chosen, model="SD-1.4 architecture, random weights" if chosen == "full" else "tiny (t2v_core.models.tiny)",
        num_frames=cfg["num_frames"], height=cfg["height"], width=cfg["width"], warmup_steps=cfg["warmup"],
        timed_steps=cfg["steps"], step_s=mean, step_times_s=times, peak_bytes=peaks, memory_method=probe.method,
        trainable_params=sum(p.numel() for p in trainable),
        speedup=mean["reference"] / mean["ours"],
        peak_memory_ratio=peaks["ours"] / peaks["reference"] if peaks["reference"] else None,
        device_info=device_info(device),
    )
    del model, optimizer
    result["motionlora"] = motionlora_step(parts, chosen, cfg, device)
    return result


def motionlora_step(parts, size, cfg, device, rank=64) -> dict:
    """MotionLoRA's step as :class:`t2v_core.methods.animatediff.MotionLoraTraining` runs it:
    the LoRA (AnimateDiff's rank 64) on the motion modules of a UNetMotionModel, every frame
    noised, cached posterior and text; time, peak memory and trainable parameters."""
    from diffusers import UNetMotionModel

    from t2v_core.methods.animatediff import add_motion_lora

    from .common import build_motion_adapter

    unet = UNetMotionModel.from_unet2d(parts["unet"], build_motion_adapter(size, device)).to(device)
    torch.manual_seed(0)
    add_motion_lora(unet, rank)
    if device.startswith("cuda"):
        unet.enable_gradient_checkpointing()
    unet.train()
    trainable = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4, weight_decay=1e-2)
    generator = torch.Generator().manual_seed(2)
    frames = (torch.rand(cfg["num_frames"], 3, cfg["height"], cfg["width"], generator=generator) * 2 - 1).to(device)
    cached = encode_clips(parts["vae"], [frames.cpu()], device)[0].to(device)
    text = encode_prompt(parts["text_encoder"], parts["tokenizer"], [PROMPT], device)
    scheduler = parts["scheduler"]

    def step():
        noise, timestep, eps = step_inputs(cached, scheduler, device, generator)
        x0 = (cached[0] + cached[1] * eps)[None]
        pred = unet(scheduler.add_noise(x0, noise, timestep), timestep,
                    text.repeat_interleave(x0.shape[2], dim=0)).sample
        return optimiser_step(masked_diffusion_loss(pred, noise, first_frame_given=False), optimizer, trainable)

    fn = (lambda: _autocast(step, torch.bfloat16)) if device.startswith("cuda") else step
    for _ in range(cfg["warmup"]):
        fn()
    times, peak = [], 0
    for i in range(cfg["steps"]):
        with PeakMemory(device) as memory:
            sync(device)
            t = time.perf_counter()
            fn()
            sync(device)
            times.append(time.perf_counter() - t)
        peak = max(peak, memory.peak_delta)
        print(f"[finetune] step {i + 1} motionlora: {times[-1]:.2f} s, peak +{memory.peak_delta / 2**20:.0f} MiB",
              flush=True)
    return {"rank": rank, "step_s": statistics.median(times), "step_times_s": times, "peak_bytes": peak,
            "trainable_params": sum(p.numel() for p in trainable)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", choices=("auto", "small", "full"), default="auto")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", required=True)
    args = parser.parse_args(argv)
    with open(args.json, "w") as f:
        json.dump(run(args.size, args.device), f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
