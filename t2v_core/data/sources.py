"""The data stage: training clips per motion and one first-frame image per prompt.

Sources: ``lamp`` (LAMP's few-shot set from its Google Drive folder, or from a local folder
filled by hand, and LAMP's benchmark first frames by URL) or ``synthetic`` (moving shapes).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from urllib.parse import quote

import numpy as np

from ..config import benchmark_file_name
from ..download import download_file
from ..video_io import read_video, video_length
from .synthetic import synthesize_first_frame, synthesize_motion_clips

log = logging.getLogger(__name__)
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")


class DataError(RuntimeError):
    pass


def download_lamp_fewshot(folder_id: str, out_dir: str | Path) -> None:
    """All of LAMP's few-shot set (one sub-folder per motion) from its Google Drive folder."""
    import gdown

    out_dir = Path(out_dir)
    work = out_dir.with_name(f".{out_dir.name}.part")
    work.mkdir(parents=True, exist_ok=True)  # kept between attempts: gdown skips finished files
    files = gdown.download_folder(id=folder_id, output=str(work), quiet=False, resume=True)
    if not files:
        raise DataError(f"Google Drive folder {folder_id}: nothing downloaded")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    work.rename(out_dir)


def find_motion_folder(root: str | Path, motion: str) -> Path:
    """The folder of ``motion`` under ``root`` (searched at any depth, e.g. root/LAMP/horse_run)."""
    root = Path(root)
    for candidate in [root / motion, *sorted(root.rglob(motion))]:
        if candidate.is_dir():
            return candidate
    raise DataError(f"{root}: no folder named {motion!r} with the motion's clips")


def frozen_or_blank(frames: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray:
    """Per frame: True if it is blank (one flat colour) or a copy of the frame before it.

    Thresholds are in 0..255 intensity units: flat means a standard deviation below 2, a
    copy means a mean absolute difference below 0.25 (real footage, even a still scene,
    carries more sensor and codec noise than that)."""
    pixels = frames.reshape(len(frames), -1, 3).astype(np.float32)
    blank = pixels.std(axis=1).max(axis=-1) < 2.0
    before = np.concatenate([pixels[:1] if previous is None else previous.reshape(1, -1, 3).astype(np.float32),
                             pixels[:-1]])
    copy = np.abs(pixels - before).mean(axis=(1, 2)) < 0.25
    if previous is None:
        copy[0] = False
    return blank | copy


def longest_damaged_run(path: str | Path, chunk: int = 64) -> int:
    """Length of the longest run of consecutive blank or repeated frames of a clip."""
    longest = current = 0
    previous = None
    length = video_length(path)
    for start in range(0, length, chunk):
        frames = read_video(path, range(start, min(start + chunk, length)))
        for damaged in frozen_or_blank(frames, previous):
            current = current + 1 if damaged else 0
            longest = max(longest, current)
        previous = frames[-1]
    return longest


def validate_clips(paths: list[Path], min_frames: int, damaged_run: int = 0, min_size: int = 16) -> None:
    """Every clip decodes, has at least ``min_frames`` frames of at least ``min_size`` pixels,
    and (when ``damaged_run`` > 0) no run of ``damaged_run`` blank or repeated frames.

    All problems of all clips are reported in one error.
    """
    problems = []
    for path in paths:
        try:
            frames = video_length(path)
            height, width = read_video(path, [0]).shape[1:3]
        except Exception as error:  # decord raises its own DECORDError and RuntimeError
            problems.append(f"{path}: cannot be decoded ({str(error).splitlines()[0]})")
            continue
        if frames < min_frames:
            problems.append(f"{path}: {frames} frames, at least {min_frames} needed")
        if min(height, width) < min_size:
            problems.append(f"{path}: {width}x{height} pixels, at least {min_size} per side needed")
        if damaged_run and frames >= 2 and (run := longest_damaged_run(path)) >= damaged_run:
            problems.append(
                f"{path}: damaged, {run} consecutive blank or repeated frames "
                f"(data.damaged_run = {damaged_run})"
            )
    if problems:
        raise DataError("invalid training clips:\n  " + "\n  ".join(problems))


def collect_motion_clips(source_dir: str | Path, motion: str, out_dir: str | Path, min_frames: int,
                         damaged_run: int = 0) -> list[Path]:
    """Validate the clips of ``motion`` found under ``source_dir`` and copy them to ``out_dir``."""
    folder = find_motion_folder(source_dir, motion)
    clips = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if not clips:
        raise DataError(f"{folder}: no video files ({', '.join(VIDEO_SUFFIXES)})")
    validate_clips(clips, min_frames, damaged_run)
    out_dir = Path(out_dir)
    work = out_dir.with_name(f".{out_dir.name}.part")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for clip in clips:
        shutil.copy2(clip, work / clip.name)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    work.rename(out_dir)
    return [out_dir / c.name for c in clips]


def prepare_motion_clips(data: dict, motion: dict, out_dir, min_frames: int, source_dir=None, fps: int = 8):
    """The training clips of one motion in ``out_dir`` (synthetic, or validated copies)."""
    if data["source"] == "synthetic":
        out_dir = Path(out_dir)
        work = out_dir.with_name(f".{out_dir.name}.part")
        shutil.rmtree(work, ignore_errors=True)
        height, width = data["clip_size"]
        synthesize_motion_clips(work, motion["name"], motion["subject"], data["seed"],
                                data["clips_per_motion"], data["clip_frames"], height, width, fps)
        validate_clips(sorted(work.glob("*.mp4")), min_frames, data["damaged_run"])
        shutil.rmtree(out_dir, ignore_errors=True)
        work.rename(out_dir)
        return sorted(out_dir.glob("*.mp4"))
    return collect_motion_clips(source_dir, motion["name"], out_dir, min_frames, data["damaged_run"])


def prepare_first_frame(data: dict, motion: dict, prompt: str, out_path, height: int, width: int) -> None:
    """The first frame of ``prompt``: LAMP's benchmark PNG, or a synthetic one."""
    if data["source"] == "synthetic":
        synthesize_first_frame(out_path, motion["name"], motion["subject"], prompt, data["seed"], height, width)
        return
    url = f"{data['benchmark_url'].rstrip('/')}/{quote(motion['name'])}/{quote(benchmark_file_name(prompt))}"
    download_file(url, out_path)
