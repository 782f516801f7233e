"""The sampling job: every seed of every prompt of one motion by one registered method
(:class:`~t2v_core.methods.base.Method`), its models loaded once, each video written as mp4 +
GIF; the job's folder gets its name when every video is written."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Mapping

import torch
from tqdm.auto import tqdm

from ..atomic import atomic_dir
from ..methods.base import Method
from ..prompts import sample_file
from ..runtime import compile_options, process_age, sampling_dtype, seed_batch_size
from ..sampling import load_first_frame
from ..video_io import write_gif, write_mp4

log = logging.getLogger(__name__)


def sample_motion(method: Method, model_dirs: Mapping[str, Path], prompts: Mapping[str, str], seeds: list[int],
                  video: dict, sampling: dict, out_dir, adapter_dir=None,
                  first_frames: Mapping[str, str] | None = None, device="cpu",
                  performance: Mapping[str, Any] | None = None) -> None:
    """Every seed of every prompt of one motion (``prompts``: prompt_id -> text) by ``method``,
    its models loaded once; an mp4 and a GIF per video at ``prompts.sample_file(out_dir, ...)``.
    ``first_frames``: prompt_id -> first-frame image, when the method needs one.
    ``performance``: the config's block (precision, compile, batch_seeds; default fp32 on CPUs,
    bf16 on GPUs, no compile, all seeds of a prompt in one batch on GPUs, one on CPUs)."""
    performance = {"precision": "auto", "compile": "off", "compile_min_videos": 1, "batch_seeds": "auto",
                   **(performance or {})}
    dtype = sampling_dtype(performance["precision"], device)
    call = method.resolve(video, sampling)
    loaded = method.load(model_dirs, adapter_dir, device, dtype)
    options = compile_options(performance["compile"], device, len(prompts) * len(seeds),
                              performance["compile_min_videos"])
    if options is not None:
        method.compile(loaded, options)
    batch = seed_batch_size(performance["batch_seeds"], device, len(seeds))
    age = process_age()
    log.info("%s: %d prompts x %d seeds in %s, %d seeds per batch, %s; models loaded %s", method.name, len(prompts),
             len(seeds), str(dtype).removeprefix("torch."), batch, "compiled" if options is not None else "not compiled",
             "" if age is None else f"{age:.1f} s after the process started")
    with atomic_dir(out_dir) as work, tqdm(total=len(prompts) * len(seeds), desc=method.name) as bar:
        for pid, prompt in prompts.items():
            first_frame = None
            if method.needs_first_frame_image:
                first_frame = load_first_frame(first_frames[pid], video["height"], video["width"])
            pending = list(seeds)
            while pending:
                chunk, start = pending[:batch], time.perf_counter()
                generators = [torch.Generator(device).manual_seed(seed) for seed in chunk]
                try:
                    videos = method.sample_batch(loaded, prompt, generators, call, first_frame)
                except torch.OutOfMemoryError:
                    if batch == 1:
                        raise
                    batch //= 2
                    log.warning("%s: out of memory with %d seeds per batch; now %d", method.name, len(chunk), batch)
                    torch.cuda.empty_cache()
                    continue
                for seed, frames in zip(chunk, videos):
                    write_mp4(sample_file(work, pid, seed, "mp4"), frames, fps=video["fps"])
                    write_gif(sample_file(work, pid, seed, "gif"), frames, fps=video["fps"])
                # the first batch's time includes the compile, when there is one
                log.info("%s %r seeds %s: %.1f s", method.name, prompt, chunk, time.perf_counter() - start)
                bar.update(len(chunk))
                pending = pending[len(chunk):]
