"""Process set-up shared by the workflow scripts: logging into the job's log, device choice."""

from __future__ import annotations

import atexit
import gc
import logging
import os
import signal
import sys
from pathlib import Path


def _exit_on_sigterm(signum, frame):
    # as an exception, so that `finally` and `except BaseException` blocks still run: a job
    # killed by Snakemake or SLURM (SIGTERM) removes its temporary files (t2v_core.atomic)
    raise SystemExit(128 + signum)


def setup_job_logging(log_path: str | Path | None) -> None:
    """Send logging, warnings and stderr (progress bars, and what C libraries write to file
    descriptor 2) of a job to its Snakemake log file; clean up on SIGTERM."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    handlers = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        stream = open(log_path, "a", buffering=1, encoding="utf-8")
        sys.stderr.flush()
        # the file descriptor too: what C libraries print (ffmpeg's decoder warnings inside
        # decord) lands in the job's log, not in the console of the whole run
        os.dup2(stream.fileno(), 2)
        sys.stderr = stream
        handlers = [logging.StreamHandler(stream)]
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)
    spare_the_garbage_collector()


def spare_the_garbage_collector() -> None:
    """Keep Python's cyclic garbage collector off the objects of the job's imports and models.

    torch, diffusers and transformers leave millions of long-lived objects, and every full
    collection walks them all: at the exit of a sampling job that walk took 1.4 of its 6 s
    (measured on the demo, 2-core CPU). ``gc.freeze`` moves the objects alive now out of the
    collector's view, once here (after the script's imports) and again at exit (after the
    models); they are still freed, files still closed, atexit handlers still run."""
    gc.freeze()
    atexit.register(gc.freeze)


def process_age() -> float | None:
    """Seconds since this process started (Linux; None where /proc does not say): a job's
    start-up, logged when its models are loaded."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat, open("/proc/uptime", encoding="ascii") as uptime:
            started = int(stat.read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
            return float(uptime.read().split()[0]) - started
    except (OSError, ValueError, IndexError):
        return None


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


#: ``performance.precision``: the dtype the sampling jobs load their models in.
PRECISIONS = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def sampling_dtype(precision: str, device, bf16_supported: bool | None = None):
    """The models' dtype for sampling on ``device``: as given, or for ``auto`` bf16 on GPUs that
    have it, fp16 on other GPUs, fp32 on CPUs (where half precision is slower, not faster)."""
    import torch

    if precision != "auto":
        return getattr(torch, PRECISIONS[precision])
    if torch.device(device).type != "cuda":
        return torch.float32
    if bf16_supported is None:
        bf16_supported = torch.cuda.is_bf16_supported()
    return torch.bfloat16 if bf16_supported else torch.float16


def seed_batch_size(batch_seeds, device, num_seeds: int) -> int:
    """How many seeds of a prompt are sampled as one batch: ``performance.batch_seeds`` as given,
    or for ``auto`` all of them on a GPU (a job halves the batch when it runs out of memory)
    and one on a CPU (where a batch of two takes as long as two videos one after the other)."""
    if batch_seeds == "auto":
        return num_seeds if torch_device_type(device) == "cuda" else 1
    return max(1, min(int(batch_seeds), num_seeds))


def compile_options(setting: str, device, num_videos: int, min_videos: int) -> dict | None:
    """torch.compile's options for a sampling job's denoiser, or None for no compile:
    ``performance.compile`` on / off, or for ``auto`` on for GPU jobs of at least
    ``min_videos`` videos, which pay back the minutes of compiling; never on CPUs."""
    if setting == "off" or (setting == "auto" and (torch_device_type(device) != "cuda" or num_videos < min_videos)):
        return None
    return {}


def torch_device_type(device) -> str:
    import torch

    return torch.device(device).type
