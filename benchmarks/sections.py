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


class TimedCalls:
    """Pipelines whose video UNet's calls are timed (:class:`TimedModel`)."""

    timed = None

    @property
    def video_unet(self):
        model = super().video_unet
        if self.timed is None or self.timed.model is not model:
            self.timed = TimedModel(model, self.timing_device)
        return self.timed


def _timed_run(pipe, device, generators, **kwargs) -> tuple[float, float, int, int]:
    """(wall seconds, UNet seconds, UNet calls, peak memory above the start) of one pipeline call."""
    from .common import PeakMemory

    timed = pipe.video_unet
    timed.calls, timed.seconds = 0, 0.0
    with PeakMemory(device) as memory:
        sync(device)
        start = time.perf_counter()
        pipe(PROMPT, generator=generators, **kwargs)
        sync(device)
        wall = time.perf_counter() - start
    return wall, timed.seconds, timed.calls, memory.peak_delta


def compare_paths(make_pipe, parts, cfg, device, kwargs, video_flops=None, peak_flops=None,
                  warm_up=(("num_inference_steps", 1),)) -> dict:
    """One pipeline's reference path (float32 weights, one video per call, no compile) against
    the sampling jobs' path on this device (performance.precision auto, sampling.batch_seeds
    auto, performance.compile as for a paper-sized job), ``cfg["seeds"]`` videos each, in one
    run. ``make_pipe(parts, reference)`` builds the pipeline with timed UNet calls;
    ``video_flops``: FLOPs of one UNet call for one video (with CFG); ``warm_up``: the
    arguments changed for the untimed first call, which runs every shape the timed calls do."""
    from t2v_core.runtime import compile_options, sampling_dtype, seed_batch_size

    from .common import cast_parts

    seeds = list(range(cfg["seeds"]))
    dtype = sampling_dtype("auto", device)
    batch = seed_batch_size("auto", device, len(seeds))
    options = compile_options("auto", device, num_videos=PAPER_JOB_VIDEOS, min_videos=12)
    paths = {"reference": (make_pipe(parts, True), 1, None),
             "ours": (make_pipe(cast_parts(parts, dtype), False), batch, options)}
    result = {"dtype": str(dtype).removeprefix("torch."), "seeds_per_batch": batch, "compiled": options is not None,
              "videos": len(seeds)}
    totals = {}
    for name, (pipe, size, compile_with) in paths.items():
        pipe.compile_options = compile_with
        # warm-up: one call at the timed batch size (includes the compile, when there is one)
        sync(device)
        start = time.perf_counter()
        pipe(PROMPT, generator=[torch.Generator(device).manual_seed(0)] * size, **{**kwargs, **dict(warm_up)})
        sync(device)
        totals[name] = {"warm_up_s": time.perf_counter() - start, "wall": 0.0, "unet": 0.0, "calls": 0, "peak": 0}
    # the two paths take turns, batch by batch, so that a shared machine's drift hits both
    batches = {name: [seeds[i:i + size] for i in range(0, len(seeds), size)] for name, (_, size, _) in paths.items()}
    for turn in range(max(len(b) for b in batches.values())):
        for name in (paths if turn % 2 == 0 else list(paths)[::-1]):
            if turn >= len(batches[name]):
                continue
            generators = [torch.Generator(device).manual_seed(seed) for seed in batches[name][turn]]
            wall, unet_s, calls, peak = _timed_run(paths[name][0], device, generators, **kwargs)
            total = totals[name]
            total["wall"] += wall
            total["unet"] += unet_s
            total["calls"] += calls * len(generators)  # one call per video's worth of work
            total["peak"] = max(total["peak"], peak)
    for name, total in totals.items():
        entry = {"seconds_per_video": total["wall"] / len(seeds), "warm_up_s": total["warm_up_s"],
                 "unet_seconds": total["unet"], "peak_bytes": total["peak"]}
        if video_flops and peak_flops:
            entry["fraction_of_peak"] = video_flops * total["calls"] / total["unet"] / peak_flops
            entry["end_to_end_fraction_of_peak"] = video_flops * total["calls"] / total["wall"] / peak_flops
        result[name] = entry
    result["speedup"] = result["reference"]["seconds_per_video"] / result["ours"]["seconds_per_video"]
    return result


#: Videos of one sampling job of the paper config (4 prompts x 3 seeds of a motion): what
#: performance.compile auto decides on.
PAPER_JOB_VIDEOS = 12


def bench_sampling(parts, cfg, device, peak_flops) -> dict:
    """LAMP-style sampling (first frame given, CFG): reference path against ours
    (:func:`compare_paths`); the reference also has the first-frame attention as it was, keys
    copied to every frame."""
    import copy

    from t2v_core.pipeline import FirstFrameVideoPipeline
    from t2v_core.sampling import vae_scale_factor
    from t2v_core.video_unet import TemporalAdapter, VideoUNet

    from .common import use_repeated_keys_attention

    class Timed(TimedCalls, FirstFrameVideoPipeline):
        timing_device = device

    torch.manual_seed(0)
    adapter = TemporalAdapter.from_unet(parts["unet"]).to(device).eval()

    def make_pipe(components, reference):
        pipe = Timed(**components, adapter=copy.deepcopy(adapter).to(components["unet"].dtype))
        pipe.set_progress_bar_config(disable=True)
        if reference:
            use_repeated_keys_attention(pipe.video_unet.model)
        return pipe

    f, h, w, steps = cfg["num_frames"], cfg["height"], cfg["width"], cfg["sample_steps"]
    flops = unet_call_flops(VideoUNet(parts["unet"], adapter).eval(), f, h, w, vae_scale_factor(parts["vae"]), device)
    first = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    kwargs = dict(num_frames=f, height=h, width=w, guidance_scale=12.5, first_frame=first, num_inference_steps=steps)
    result = compare_paths(make_pipe, parts, cfg, device, kwargs, flops, peak_flops)
    return {"num_frames": f, "height": h, "width": w, "ddim_steps": steps, "guidance_scale": 12.5,
            "unet_flops_per_call": flops, **result}


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
    call = ANIMATEDIFF.resolve(video, sampling)

    def one():
        return ANIMATEDIFF.sample(pipe, PROMPT, torch.Generator(device).manual_seed(0), call)

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


def bench_text2video_zero(parts, cfg, device) -> dict:
    """Text2Video-Zero: diffusers' pipeline (fp32, one video per call, the reference) against
    ours as the sampling jobs run it (:func:`compare_paths`), and ours in fp32 against diffusers'
    on one seed (frames within one uint8 level)."""
    from t2v_core.methods.text2video_zero import sample_text2video_zero_diffusers
    from t2v_core.text2video_zero_pipeline import Text2VideoZeroPipeline

    class Timed(TimedCalls, Text2VideoZeroPipeline):
        timing_device = device

    class Diffusers:
        """diffusers' pipeline behind our pipeline's call signature, its UNet calls timed."""

        compile_options = None

        def __init__(self, components):
            self.components, self.timed = components, TimedModel(components["unet"], device)
            self.video_unet = self.timed

        def __call__(self, prompt, generator, **kwargs):
            from diffusers import TextToVideoZeroPipeline

            from t2v_core.sampling import diffusers_pipeline

            pipe = diffusers_pipeline(TextToVideoZeroPipeline, self.components, device)
            unet = pipe.unet
            timed = self.timed

            def forward(*args, **kw):  # diffusers calls its UNet's forward: time it there
                sync(device)
                start = time.perf_counter()
                out = original(*args, **kw)
                sync(device)
                timed.seconds += time.perf_counter() - start
                timed.calls += 1
                return out

            original, unet.forward = unet.forward, forward
            try:
                return [sample_text2video_zero_diffusers(self.components, prompt, generator=g, device=device, **kwargs)
                        for g in generator]
            finally:
                del unet.forward

    def make_pipe(components, reference):
        if reference:
            return Diffusers(components)
        pipe = Timed(**components)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    kwargs = dict(num_frames=cfg["num_frames"], height=cfg["height"], width=cfg["width"],
                  num_inference_steps=cfg["t2vz_steps"], guidance_scale=7.5, t0=cfg["t0"], t1=cfg["t1"],
                  motion_field_strength_x=12, motion_field_strength_y=12)
    # the warm-up runs frame 1 alone and all frames: both shapes of the UNet's calls
    result = compare_paths(make_pipe, parts, cfg, device, kwargs,
                           warm_up=(("num_inference_steps", 2), ("t0", 0), ("t1", 1)))
    ours = make_pipe(parts, False)(PROMPT, generator=torch.Generator(device).manual_seed(0), **kwargs).frames
    theirs = sample_text2video_zero_diffusers(parts, PROMPT, generator=torch.Generator(device).manual_seed(0),
                                              device=device, **kwargs)
    return {"num_frames": cfg["num_frames"], "steps": cfg["t2vz_steps"], "t0": cfg["t0"], "t1": cfg["t1"], **result,
            "fp32_max_abs_diff": int(np.abs(ours.astype(int) - theirs.astype(int)).max())}


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
