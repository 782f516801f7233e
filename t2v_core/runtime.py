"""Process set-up shared by the workflow scripts: logging into the job's log, device choice."""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path


def _exit_on_sigterm(signum, frame):
    # as an exception, so that `finally` and `except BaseException` blocks still run: a job
    # killed by Snakemake or SLURM (SIGTERM) removes its temporary files (t2v_core.atomic)
    raise SystemExit(128 + signum)


def setup_job_logging(log_path: str | Path | None) -> None:
    """Send logging, warnings and stderr (progress bars) of a job to its Snakemake log file;
    clean up on SIGTERM."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    handlers = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        stream = open(log_path, "a", buffering=1, encoding="utf-8")
        sys.stderr = stream
        handlers = [logging.StreamHandler(stream)]
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
