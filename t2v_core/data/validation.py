"""Checks of the data before anything uses it: decodable, long and large enough, undamaged
clips (all problems reported at once), and sha256 sums against a manifest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from ..download import sha256_of
from ..video_io import atomic_path, read_video, video_length

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")
CHECKSUM_FILE = "clips.sha256"


class DataError(RuntimeError):
    """Data that cannot be used; the message names every file and what is wrong with it."""


def list_clips(folder: str | Path) -> list[Path]:
    """The video files of ``folder`` (not hidden, known video suffix), sorted by name."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith("."))


def frozen_or_blank(frames: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray:
    """Per frame: True if it is blank (one flat colour) or a copy of the frame before it.

    Thresholds are in 0..255 intensity units: flat means a standard deviation below 2, a
    copy means a mean absolute difference below 0.25 (real footage, even a still scene,
    carries more sensor and codec noise than that)."""
    pixels = frames.reshape(len(frames), -1, 3).astype(np.float32)
    blank = pixels.std(axis=1).max(axis=-1) < 2.0
    first = pixels[:1] if previous is None else previous.reshape(1, -1, 3).astype(np.float32)
    copy = np.abs(pixels - np.concatenate([first, pixels[:-1]])).mean(axis=(1, 2)) < 0.25
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


def validate_first_frame(path: str | Path, height: int, width: int, min_size: int = 16):
    """A first-frame image that sampling can use: it decodes completely (a truncated PNG or an
    HTML page saved as .png does not), has at least ``min_size`` pixels a side, and the aspect
    ratio of the ``width`` x ``height`` videos (it is resized, never cropped). Returns the
    decoded RGB image (PIL); DataError naming the file otherwise."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()  # decodes every byte: a truncated file fails here, not at sampling
            image = image.convert("RGB")
    except (OSError, UnidentifiedImageError, SyntaxError) as error:
        head = Path(path).read_bytes()[:64].lstrip().lower() if Path(path).is_file() else b""
        what = " (it is an HTML page)" if head.startswith((b"<!doctype html", b"<html")) else ""
        raise DataError(f"{path}: first-frame image cannot be decoded{what}: {error}") from error
    w, h = image.size
    if min(w, h) < min_size:
        raise DataError(f"{path}: first-frame image is {w}x{h} (WxH), at least {min_size} pixels a side needed")
    if abs(w / h - width / height) > 0.01:
        raise DataError(f"{path}: first-frame image is {w}x{h} (WxH), whose aspect ratio differs from the "
                        f"video's {width}x{height} (video.width x video.height)")
    return image


def load_manifest(path: str | Path | None) -> dict:
    """``{"benchmark": {"<motion>/<file>": sha256}, "fewshot": {motion: {file: sha256}}}``."""
    if path is None:
        return {"benchmark": {}, "fewshot": {}}
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise DataError(f"{path}: cannot read the data manifest: {error}") from error
    unknown = set(raw) - {"benchmark", "fewshot"}
    if unknown:
        raise DataError(f"{path}: unknown manifest sections {sorted(unknown)} (benchmark, fewshot)")
    manifest = {"benchmark": raw.get("benchmark") or {}, "fewshot": raw.get("fewshot") or {}}
    sums = [("benchmark", k, v) for k, v in manifest["benchmark"].items()]
    sums += [(f"fewshot.{m}", k, v) for m, files in manifest["fewshot"].items() for k, v in files.items()]
    bad = [f"{section}: {key}: {value!r}" for section, key, value in sums
           if not (isinstance(value, str) and len(value) == 64 and set(value) <= set("0123456789abcdef"))]
    if bad:
        raise DataError(f"{path}: not sha256 hex digests:\n  " + "\n  ".join(bad))
    return manifest


def verify_clip_checksums(clips: list[Path], expected: dict[str, str], where: str) -> None:
    """The clips are exactly the manifest's files, each with its sum; every difference named."""
    found = {p.name: p for p in clips}
    problems = [f"{name}: listed in the manifest but missing" for name in sorted(set(expected) - set(found))]
    problems += [f"{name}: not in the manifest" for name in sorted(set(found) - set(expected))]
    for name in sorted(set(found) & set(expected)):
        actual = sha256_of(found[name])
        if actual != expected[name]:
            problems.append(f"{found[name]}: expected sha256 {expected[name]}, got {actual}")
    if problems:
        raise DataError(f"{where}: clips differ from the data manifest:\n  " + "\n  ".join(problems))


def write_checksums(clips: list[Path], path: str | Path) -> None:
    """``sha256sum``-style file of the clips (the lines to pin them in the manifest)."""
    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"{sha256_of(p)}  {p.name}\n" for p in clips), encoding="utf-8")


