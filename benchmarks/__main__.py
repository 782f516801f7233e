"""The performance suite, side by side in one run:

    python -m benchmarks [--out DIR] [--size auto|small|full] [--device cpu|cuda]

Sections: GEMM peak, the demo's fine-tuning step's FLOP/s against it (toy_step.py), fine-tuning
step (ours vs reference style, in a fresh subprocess), first-frame sampling (seconds per video, UNet FLOP/s as a fraction of the GEMM peak),
Text2Video-Zero (our wrapper vs diffusers directly), CLIP and SAM frames per second, and
Snakemake's dry-run overhead. A failing section records its error; the others still run.
Writes ``summary.json`` and ``summary.md`` into ``--out`` (default ``benchmarks/results/<cpu|cuda>``).
Models have random weights.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

from t2v_core.video_io import atomic_path

from . import sections
from .common import REPO, build_parts, device_info, gemm_peak, settings
from .toy_step import bench_toy_step


def section(results: dict, name: str, fn, *args, **kwargs):
    print(f"== {name}", flush=True)
    start = time.perf_counter()
    try:
        results[name] = fn(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - a benchmark section must not stop the others
        traceback.print_exc()
        results[name] = {"error": f"{type(error).__name__}: {error}"}
    results[name]["section_wall_s"] = time.perf_counter() - start
    print(f"   {name}: {results[name]['section_wall_s']:.1f} s", flush=True)
    return results[name]


def finetune_subprocess(size: str, device: str) -> dict:
    """The fine-tuning benchmark in a fresh process (clean memory baseline; malloc returns
    freed blocks to the OS so the RSS probe sees each step's own peak)."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "finetune.json"
        cmd = [sys.executable, "-m", "benchmarks.finetune_bench", "--size", size, "--device", device, "--json", str(out)]
        proc = subprocess.run(cmd, cwd=REPO, env=env, timeout=420)
        if proc.returncode:
            raise RuntimeError(f"finetune_bench exited with {proc.returncode}")
        return json.loads(out.read_text())


def fmt(value, unit="", digits=3):
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}g}{unit}"
    return f"{value}{unit}"


def path_summary(path: dict, name: str) -> str:
    """Seconds per video, warm-up (with the compile), fraction of the GEMM peak and peak memory
    of one path of a sampling section."""
    text = f"{name} {path['seconds_per_video']:.2f} s/video (warm-up {path['warm_up_s']:.1f} s"
    if path.get("fraction_of_peak") is not None:
        text += f", UNet at {100 * path['fraction_of_peak']:.1f}% of the GEMM peak"
    if path.get("peak_bytes"):
        text += f", peak +{path['peak_bytes'] / 2**20:.0f} MiB"
    return text + ")"


def markdown(summary: dict) -> str:
    info, r = summary["device"], summary["results"]
    lines = ["# Benchmark summary", "",
             f"- device: {info['name']} (`{info['device']}`, {info['cpu_threads']} torch threads)",
             f"- torch {info['torch']}, python {info['python']}",
             f"- size: {summary['size']}; models have random weights (timings only); total wall time "
             f"{summary['wall_s']:.0f} s", ""]
    g, ft, sp, ad = r.get("gemm", {}), r.get("finetune", {}), r.get("sampling", {}), r.get("animatediff", {})
    tz, cl, sam, sm = r.get("text2video_zero", {}), r.get("clip", {}), r.get("sam", {}), r.get("snakemake", {})
    rows = []
    if "flops_per_s" in g:
        rows.append(("GEMM peak", f"{g['dtype']} {g['n']}x{g['n']}, best of {g['repeats']}",
                     f"{g['flops_per_s'] / 1e9:.1f} GFLOP/s", ""))
    ts = r.get("toy_step", {})
    if "step_s" in ts:
        threads = f"{ts['threads']} thread, as a demo job" if ts["threads"] else "the GPU"
        rows.append(("Toy fine-tuning step (the demo's)",
                     f"video UNet, forward + backward to the adapter, {ts['num_frames']}x{ts['latent_size']}x"
                     f"{ts['latent_size']} latents, {threads}; plain 2D UNet on the same frames",
                     f"video {ts['flops']['video'] / 1e9:.2f} GFLOP in {1e3 * ts['step_s']['video']:.1f} ms = "
                     f"{ts['flops_per_s']['video'] / 1e9:.1f} GFLOP/s, {ts['fraction_of_peak']['video']:.0%} of the "
                     f"{ts['gemm_peak_flops_per_s'] / 1e9:.1f} GFLOP/s GEMM peak at that thread count; 2D "
                     f"{ts['flops']['plain_2d'] / 1e9:.2f} GFLOP in {1e3 * ts['step_s']['plain_2d']:.1f} ms = "
                     f"{ts['fraction_of_peak']['plain_2d']:.0%} of it",
                     f"video/2D time {ts['time_ratio']:.2f}x for {ts['flop_ratio']:.2f}x the FLOPs"))
    if "step_s" in ft:
        peak = ft["peak_bytes"]
        rows.append(("Fine-tuning step", f"{ft['model']}, {ft['num_frames']}x{ft['height']}x{ft['width']}, "
                     f"{ft['timed_steps']} steps after {ft['warmup_steps']} warm-up",
                     f"median ours {ft['step_s']['ours']:.2f} s, reference {ft['step_s']['reference']:.2f} s; "
                     f"VAE + text encoding alone {ft['per_step_encoding_s']:.2f} s",
                     f"speed-up {ft['speedup']:.2f}x (encoding is {ft['per_step_encoding_s'] / ft['step_s']['ours']:.0%} "
                     "of our step)"))
        rows.append(("Fine-tuning peak memory", f"above the step's start level; {ft['memory_method']}",
                     f"ours {peak['ours'] / 2**20:.0f} MiB, reference {peak['reference'] / 2**20:.0f} MiB",
                     f"ours/reference {fmt(ft['peak_memory_ratio'], digits=2)}"))
    if "step_s" in ft.get("motionlora", {}):
        ml = ft["motionlora"]
        rows.append(("MotionLoRA fine-tuning step", f"rank {ml['rank']} on the motion modules of a random-weight "
                     f"AnimateDiff adapter, same model and clip size", f"median {ml['step_s']:.2f} s, peak "
                     f"+{ml['peak_bytes'] / 2**20:.0f} MiB, {ml['trainable_params']:,} trainable parameters",
                     f"step time / LAMP-style step {ml['step_s'] / ft['step_s']['ours']:.2f}x; LAMP-style trains "
                     f"{ft['trainable_params']:,} parameters"))
    for name, label, section_rows in (("sampling", "Sampling, LAMP-style (first frame, CFG)", sp),
                                      ("text2video_zero", "Text2Video-Zero", tz)):
        if "speedup" not in section_rows:
            continue
        if name == "sampling":
            setting = (f"{sp['num_frames']}x{sp['height']}x{sp['width']}, {sp['ddim_steps']} DDIM steps, "
                       f"{sp['videos']} videos")
            reference = "reference: fp32, one video per call, keys copied per frame"
        else:
            setting = f"{tz['num_frames']} frames, {tz['steps']} steps, {tz['videos']} videos"
            reference = "reference: diffusers' pipeline, fp32"
        rows.append((label, f"{setting}; {reference}; ours: {section_rows['dtype']}, "
                     f"{section_rows['seeds_per_batch']} per batch, "
                     f"{'compiled' if section_rows['compiled'] else 'not compiled'}",
                     "; ".join(path_summary(section_rows[path], path) for path in ("ours", "reference")),
                     f"speed-up {section_rows['speedup']:.2f}x" + (
                         f"; ours fp32 vs diffusers: max {tz['fp32_max_abs_diff']} uint8 levels"
                         if name == "text2video_zero" else "")))
    if "seconds_per_video" in ad:
        rows.append(("AnimateDiff sampling (CFG)", f"{ad['num_frames']}x{ad['height']}x{ad['width']}, "
                     f"{ad['ddim_steps']} DDIM steps, diffusers' pipeline", f"{ad['seconds_per_video']:.2f} s/video",
                     f"{ad['seconds_per_video'] / sp['ours']['seconds_per_video']:.2f}x our LAMP-style sampling's "
                     "time" if "ours" in sp else ""))
    if "frames_per_s" in cl:
        rows.append(("CLIP evaluation", f"{cl['model']}, {cl['frames']} frames", f"{cl['frames_per_s']:.1f} frames/s", ""))
    if "frames_per_s" in sam:
        rows.append(("SAM mask extraction", f"{sam['model']}, set_image+predict, {sam['frames']} frames "
                     f"{sam['frame_size']}", f"{sam['frames_per_s']:.3f} frames/s", ""))
    if "paper_dry_run" in sm:
        dry, noop = sm["paper_dry_run"], sm["demo_noop"]
        rows.append(("Snakemake: paper DAG dry run", f"`{dry['command']}`", f"{dry['seconds']:.1f} s",
                     f"{dry.get('jobs', '?')} jobs; exit code {dry['returncode']}"))
        rows.append(("Snakemake: demo no-op re-run", f"`{noop['command']}`", f"{noop['seconds']:.1f} s",
                     noop.get("skipped", f"nothing to be done: {noop.get('nothing_done')}")))
    lines += ["| section | setting | measured | ratio |", "|---|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    errors = [(name, res["error"]) for name, res in r.items() if "error" in res]
    if errors:
        lines += ["", "## Errors", ""] + [f"- {name}: {error}" for name, error in errors]
    if ft.get("fallback"):
        lines += ["", f"Note: {ft['fallback']}."]
    lines += ["", "Reference-style step: VAE encode of the clip's frames and the text encoder at every step, "
              "diffusers' classic `AttnProcessor` on the UNet's attentions (the first-frame self-attention, "
              "part of the video model, is the same SDPA processor in both). Ours: cached posterior "
              "(mean, std) and text embedding, `AttnProcessor2_0` (SDPA). On GPUs the reference step runs in "
              "fp16 autocast with gradient checkpointing (the paper config's former setting), ours in bf16 "
              "autocast without (what `mixed_precision: auto` and `gradient_checkpointing: auto` pick when a step "
              "fits). Timing steps alternate between the two. Wall times on a shared CPU are noisy; compare the "
              "ratios. Sampling sections: the reference path is float32, one video per call, uncompiled; ours is "
              "what a sampling job does on this device (`performance.precision`, `sampling.batch_seeds` and "
              "`performance.compile` at auto).", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None, help="default: benchmarks/results/<cpu|cuda>")
    parser.add_argument("--size", choices=("auto", "small", "full"), default="auto",
                        help="full: SD-1.4 architecture; small: the tiny model at the demo size; "
                             "auto: full on CUDA, on CPU full unless a step takes > 5 s")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--skip", nargs="*", default=[], help="sections to leave out")
    args = parser.parse_args(argv)
    out = Path(args.out or REPO / "benchmarks" / "results" / args.device.split(":")[0])
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    results: dict = {}
    run = {n: n not in args.skip for n in ("gemm", "toy_step", "finetune", "sampling", "animatediff", "text2video_zero", "clip", "sam",
                                          "snakemake")}
    if run["gemm"]:
        section(results, "gemm", gemm_peak, args.device)
    if run["toy_step"]:
        section(results, "toy_step", bench_toy_step, args.device)
    size = "full" if args.size == "auto" and args.device.startswith("cuda") else args.size
    if run["finetune"]:
        section(results, "finetune", finetune_subprocess, size, args.device)
        size = results["finetune"].get("size", size)
    size = "full" if size == "auto" else size
    cfg = settings(size, args.device.startswith("cuda"))
    if run["sampling"] or run["animatediff"] or run["text2video_zero"]:
        print(f"== building the {size} base model for sampling", flush=True)
        try:
            parts = build_parts(size, args.device)
        except Exception as error:  # noqa: BLE001
            traceback.print_exc()
            parts = None
            results["sampling"] = {"error": f"model build failed: {error}"}
        if parts is not None:
            peak = results.get("gemm", {}).get("flops_per_s")
            if run["sampling"]:
                section(results, "sampling", sections.bench_sampling, parts, cfg, args.device, peak)
            if run["animatediff"]:
                section(results, "animatediff", sections.bench_animatediff, parts, size, cfg, args.device)
            if run["text2video_zero"]:
                section(results, "text2video_zero", sections.bench_text2video_zero, parts, cfg, args.device)
            del parts
    if run["clip"]:
        section(results, "clip", sections.bench_clip, args.device)
    if run["sam"]:
        section(results, "sam", sections.bench_sam, args.device)
    if run["snakemake"]:
        section(results, "snakemake", sections.bench_snakemake)
    summary = {"device": device_info(args.device), "size": size, "requested_size": args.size,
               "wall_s": time.perf_counter() - start, "results": results}
    for name, text in (("summary.json", json.dumps(summary, indent=2)), ("summary.md", markdown(summary))):
        with atomic_path(out / name) as tmp:
            Path(tmp).write_text(text)
    print(markdown(summary))
    print(f"wrote {out / 'summary.json'} and {out / 'summary.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
