"""The data stage: training clips per motion and one first-frame image per prompt.

Sources: ``lamp`` (LAMP's few-shot set from its Google Drive folder, or from a local folder
filled by hand, and LAMP's benchmark first frames by URL) or ``synthetic`` (moving shapes).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from urllib.parse import quote

from ..config import benchmark_file_name
from ..download import download_file
from ..video_io import video_length
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


def validate_clips(paths: list[Path], min_frames: int) -> None:
    """Every clip decodes and has at least ``min_frames`` frames; all problems in one error."""
    problems = []
    for path in paths:
        try:
            frames = video_length(path)
        except Exception as error:  # decord raises its own DECORDError and RuntimeError
            problems.append(f"{path}: cannot be decoded ({str(error).splitlines()[0]})")
            continue
        if frames < min_frames:
            problems.append(f"{path}: {frames} frames, at least {min_frames} needed")
    if problems:
        raise DataError("invalid training clips:\n  " + "\n  ".join(problems))


def collect_motion_clips(source_dir: str | Path, motion: str, out_dir: str | Path, min_frames: int) -> list[Path]:
    """Validate the clips of ``motion`` found under ``source_dir`` and copy them to ``out_dir``."""
    folder = find_motion_folder(source_dir, motion)
    clips = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if not clips:
        raise DataError(f"{folder}: no video files ({', '.join(VIDEO_SUFFIXES)})")
    validate_clips(clips, min_frames)
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
        validate_clips(sorted(work.glob("*.mp4")), min_frames)
        shutil.rmtree(out_dir, ignore_errors=True)
        work.rename(out_dir)
        return sorted(out_dir.glob("*.mp4"))
    return collect_motion_clips(source_dir, motion["name"], out_dir, min_frames)


def prepare_first_frame(data: dict, motion: dict, prompt: str, out_path, height: int, width: int) -> None:
    """The first frame of ``prompt``: LAMP's benchmark PNG, or a synthetic one."""
    if data["source"] == "synthetic":
        synthesize_first_frame(out_path, motion["name"], motion["subject"], prompt, data["seed"], height, width)
        return
    url = f"{data['benchmark_url'].rstrip('/')}/{quote(motion['name'])}/{quote(benchmark_file_name(prompt))}"
    download_file(url, out_path)
