"""Benchmark sections run in the main process: sampling, Text2Video-Zero, CLIP, SAM, Snakemake."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import numpy as np
import torch

from .common import REPO, sync

PROMPT = "a horse runs on the grass"


class TimedModel:
    """Wraps a VideoUNet: same calls, and the time spent in them is added up."""

    def __init__(self, model, device):
        self.model, self.device = model, device
        self.calls, self.seconds = 0, 0.0

    def __call__(self, *args, **kwargs):
        sync(self.device)
        start = time.perf_counter()
        out = self.model(*args, **kwargs)
        sync(self.device)
        self.seconds += time.perf_counter() - start
        self.calls += 1
        return out


def unet_call_flops(model, num_frames, height, width, factor, device) -> int:
    """FLOPs of one VideoUNet call on a classifier-free-guidance batch (2 clips)."""
    from torch.utils.flop_counter import FlopCounterMode

    c = model.unet.config.in_channels
    x = torch.randn(2, c, num_frames, height // factor, width // factor, device=device)
    text = torch.randn(2, 77, model.unet.config.cross_attention_dim, device=device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x, torch.tensor(500, device=device), text)
    return counter.get_total_flops()


def bench_sampling(parts, cfg, device, peak_flops) -> dict:
    from t2v_core.pipeline import FirstFrameVideoPipeline
    from t2v_core.video_unet import TemporalAdapter

    class TimedPipeline(FirstFrameVideoPipeline):
        """The pipeline, with the time spent in its video UNet's calls added up."""

        timed = None

        @property
        def video_unet(self):
            model = super().video_unet
            if self.timed is None or self.timed.model is not model:
                self.timed = TimedModel(model, device)
            return self.timed

    torch.manual_seed(0)
    adapter = TemporalAdapter.from_unet(parts["unet"]).to(device).eval()
    pipe = TimedPipeline(**parts, adapter=adapter)
    pipe.set_progress_bar_config(disable=True)
    f, h, w, steps = cfg["num_frames"], cfg["height"], cfg["width"], cfg["sample_steps"]
    flops = unet_call_flops(pipe.video_unet.model, f, h, w, pipe.vae_scale_factor, device)
    first = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    kwargs = dict(num_frames=f, height=h, width=w, guidance_scale=12.5, first_frame=first)
    pipe(PROMPT, num_inference_steps=1, generator=torch.Generator(device).manual_seed(0), **kwargs)  # warm-up
    timed = pipe.video_unet
    timed.calls, timed.seconds = 0, 0.0
    start = time.perf_counter()
    pipe(PROMPT, num_inference_steps=steps, generator=torch.Generator(device).manual_seed(0), **kwargs)
    sync(device)
    total = time.perf_counter() - start
    achieved = flops * timed.calls / timed.seconds
    return {"num_frames": f, "height": h, "width": w, "ddim_steps": steps, "guidance_scale": 12.5,
            "seconds_per_video": total, "unet_calls": timed.calls, "unet_seconds": timed.seconds,
            "unet_flops_per_call": flops, "unet_flops_per_s": achieved,
            "fraction_of_peak": achieved / peak_flops if peak_flops else None,
            "end_to_end_fraction_of_peak": flops * timed.calls / total / peak_flops if peak_flops else None}


def bench_animatediff(parts, size, cfg, device, repeats=2) -> dict:
    """AnimateDiff's sampling (diffusers' pipeline, CFG) with a random-weight motion adapter of
    the base model's size: seconds per video."""
    from diffusers import AnimateDiffPipeline

    from t2v_core.methods.animatediff import ANIMATEDIFF

    from .common import build_motion_adapter

    # what ANIMATEDIFF.load builds, from the benchmark's random-weight models
    pipe = AnimateDiffPipeline(**parts, motion_adapter=build_motion_adapter(size, device)).to(device)
    pipe.set_progress_bar_config(disable=True)
    video = {"num_frames": cfg["num_frames"], "height": cfg["height"], "width": cfg["width"]}
    sampling = {"num_inference_steps": cfg["sample_steps"],
                "animatediff": {"guidance_scale": 7.5, "beta_schedule": "linear"}}

    def one():
        return ANIMATEDIFF.sample(pipe, PROMPT, torch.Generator(device).manual_seed(0), video, sampling)

    one()  # warm-up
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        one()
        sync(device)
        times.append(time.perf_counter() - start)
    return {**video, "ddim_steps": cfg["sample_steps"], "guidance_scale": 7.5,
            "seconds_per_video": statistics.median(times), "times_s": times}


def bench_text2video_zero(parts, cfg, device, repeats=3) -> dict:
    from diffusers import TextToVideoZeroPipeline

    from t2v_core.methods.text2video_zero import sample_text2video_zero_diffusers
    from t2v_core.sampling import to_uint8

    args = dict(prompt=PROMPT, height=cfg["height"], width=cfg["width"], num_inference_steps=cfg["t2vz_steps"],
                guidance_scale=7.5, t0=cfg["t0"], t1=cfg["t1"], motion_field_strength_x=12,
                motion_field_strength_y=12)

    def ours():
        return sample_text2video_zero_diffusers(parts, num_frames=cfg["num_frames"], device=device,
                                      generator=torch.Generator(device).manual_seed(0), **args)

    def direct():
        pipe = TextToVideoZeroPipeline(
            vae=parts["vae"], text_encoder=parts["text_encoder"], tokenizer=parts["tokenizer"],
            unet=parts["unet"], scheduler=parts["scheduler"], safety_checker=None,
            feature_extractor=None, requires_safety_checker=False).to(device)
        pipe.set_progress_bar_config(disable=True)
        images = pipe(video_length=cfg["num_frames"], generator=torch.Generator(device).manual_seed(0),
                      output_type="np", **args).images
        return to_uint8(images)

    ours()  # warm-up
    times = {"ours": [], "diffusers": []}
    outputs = {}
    for i in range(repeats):
        for name, fn in ((("ours", ours), ("diffusers", direct)) if i % 2 == 0 else (("diffusers", direct), ("ours", ours))):
            sync(device)
            start = time.perf_counter()
            outputs[name] = fn()
            sync(device)
            times[name].append(time.perf_counter() - start)
    mean = {k: statistics.median(v) for k, v in times.items()}
    return {"num_frames": cfg["num_frames"], "steps": cfg["t2vz_steps"], "t0": cfg["t0"], "t1": cfg["t1"],
            "seconds": mean, "times_s": times, "time_ratio_ours_over_diffusers": mean["ours"] / mean["diffusers"],
            "identical": bool(np.array_equal(outputs["ours"], outputs["diffusers"])),
            "max_abs_diff": int(np.abs(outputs["ours"].astype(int) - outputs["diffusers"].astype(int)).max())}


def bench_clip(device, frames=32) -> dict:
    import open_clip

    from t2v_core.models.loading import ClipEmbedder

    name = "ViT-L-14" if device.startswith("cuda") else "ViT-B-32"
    model, _, preprocess = open_clip.create_model_and_transforms(name, device=device)  # no pretrained tag
    embedder = ClipEmbedder(model.eval(), preprocess, open_clip.get_tokenizer(name), device=device, batch_size=32)
    video = np.random.default_rng(0).integers(0, 256, (frames, 256, 256, 3), dtype=np.uint8)
    embedder.frames(video[:4])  # warm-up
    start = time.perf_counter()
    embedder.frames(video)
    embedder.text(PROMPT)
    sync(device)
    seconds = time.perf_counter() - start
    return {"model": f"open_clip {name}, random weights (no pretrained tag)", "frames": frames,
            "frame_size": "256x256", "seconds": seconds, "frames_per_s": frames / seconds}


def bench_sam(device, frames=None) -> dict:
    from segment_anything import SamPredictor, sam_model_registry

    model_type = "vit_h" if device.startswith("cuda") else "vit_b"
    frames = frames or (8 if device.startswith("cuda") else 2)
    torch.manual_seed(0)
    predictor = SamPredictor(sam_model_registry[model_type]().to(device).eval())
    video = np.random.default_rng(0).integers(0, 256, (frames + 1, 256, 256, 3), dtype=np.uint8)
    box = np.array([64, 64, 192, 192])

    def one(frame):
        predictor.set_image(frame)
        predictor.predict(box=box, multimask_output=True)

    one(video[0])  # warm-up
    sync(device)
    start = time.perf_counter()
    for frame in video[1:]:
        one(frame)
    sync(device)
    seconds = time.perf_counter() - start
    return {"model": f"segment_anything {model_type}, random weights", "frames": frames,
            "frame_size": "256x256", "seconds": seconds, "frames_per_s": frames / seconds}


def _timed_snakemake(args, timeout) -> tuple[dict, subprocess.CompletedProcess]:
    cmd = [sys.executable, "-m", "snakemake", *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    result = {"command": " ".join(["snakemake", *args]), "returncode": proc.returncode,
              "seconds": time.perf_counter() - start}
    if proc.returncode:
        result["error_tail"] = (proc.stderr or proc.stdout)[-1500:]
    return result, proc


def bench_snakemake(timeout=300) -> dict:
    """Dry-run of the paper's DAG, and a no-op re-run of the demo when the demo is built and
    up to date (checked with a dry run first, so the timed run cannot start real work)."""
    paper, proc = _timed_snakemake(["all", "-n", "--cores", "8"], timeout)
    jobs = [line for line in proc.stdout.splitlines() if line.strip().startswith("total")]
    if jobs:
        paper["jobs"] = int(jobs[-1].split()[-1])
    demo_args = ["all", "--cores", "2", "--configfile", "config/demo.yaml"]
    check, proc = _timed_snakemake(["-n", *demo_args], timeout)
    output = proc.stdout + proc.stderr
    if proc.returncode == 0 and "Nothing to be done" in output:
        demo, proc = _timed_snakemake(demo_args, timeout)
        demo["nothing_done"] = "Nothing to be done" in proc.stdout + proc.stderr
    else:
        demo = {**check, "skipped": "the demo is not built or not up to date (run make demo first); "
                                    "seconds is the demo's dry run"}
    return {"paper_dry_run": paper, "demo_noop": demo}
