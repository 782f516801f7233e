"""Checks of the data before anything uses it: decodable, long and large enough, undamaged
clips (all problems reported at once), and sha256 sums against a manifest."""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from ..atomic import atomic_path
from ..download import sha256_of
from ..video_io import iter_frames

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")
CHECKSUM_FILE = "clips.sha256"


class DataError(RuntimeError):
    """Data that cannot be used; the message names every file and what is wrong with it."""


def list_clips(folder: str | Path) -> list[Path]:
    """The video files of ``folder`` (not hidden, known video suffix), sorted by name."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith("."))


def blank_frames(frames: np.ndarray) -> np.ndarray:
    """Per frame (uint8 (F, H, W, 3)): True if it is one flat colour (a standard deviation below
    2 levels in every channel). Measured on every 4th pixel of every 4th row: a flat frame is
    flat there too, and a float pass over every pixel made the check 15x slower than decoding."""
    sample = frames[:, ::4, ::4].reshape(len(frames), -1, 3).astype(np.float32)
    return sample.std(axis=1).max(axis=-1) < 2.0


def frame_differences(frames: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray:
    """Mean absolute difference (0..255 levels) of every frame to the one before it (to
    ``previous`` for the first; without it, one value fewer than frames)."""
    pairs = frames if previous is None else np.concatenate([previous[None], frames])
    return np.abs(np.diff(pairs.astype(np.int16), axis=0)).mean(axis=(1, 2, 3))


#: A copy of the frame before: a mean absolute difference below 0.25 levels (real footage,
#: even a still scene, carries more sensor and codec noise than that).
COPY_LEVELS = 0.25


#: A sudden change between two frames, the mark of a damaged encode (macroblock garbage that
#: decodes without an error): their mean absolute difference exceeds the clip's median one by
#: ``data.damaged_jump`` robust standard deviations (1.4826 x the median absolute deviation),
#: and is also JUMP_RATIO times the median and JUMP_MIN_LEVELS intensity levels above it
#: (guards for clips whose differences hardly vary). Real footage stays below ~8 deviations
#: (the shared test clips: 7.7, 7.2, 3.3); the check needs JUMP_MIN_PAIRS frame pairs.
JUMP_RATIO = 4.0
JUMP_MIN_LEVELS = 5.0
JUMP_MIN_PAIRS = 8


@dataclass
class ClipScan:
    """What one sequential decode of a clip found."""

    frames: int
    height: int
    width: int
    #: The longest run of consecutive blank or repeated frames.
    longest_damaged_run: int
    #: Mean absolute difference of every pair of consecutive frames (0..255 levels).
    differences: np.ndarray
    #: What the decoder printed (ffmpeg's warnings and errors), one line each.
    decoder_messages: list[str]

    def sudden_changes(self, deviations: float) -> list[int]:
        """Indices i of the frame pairs (i, i+1) that change suddenly (see JUMP_RATIO)."""
        d = self.differences
        if deviations <= 0 or len(d) < JUMP_MIN_PAIRS:
            return []
        median = float(np.median(d))
        spread = 1.4826 * float(np.median(np.abs(d - median)))
        jump = (d > median + deviations * spread) & (d > JUMP_RATIO * median) & (d > median + JUMP_MIN_LEVELS)
        return [int(i) for i in np.flatnonzero(jump)]


@contextlib.contextmanager
def decoder_output():
    """Collect what C libraries (ffmpeg inside decord) write to the process's stderr; yields
    a list that holds the lines after the block."""
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines += [line.strip() for line in capture.read().decode(errors="replace").splitlines() if line.strip()]


def scan_clip(path: str | Path, chunk: int = 32) -> ClipScan:
    """Decode a clip once, in order (as training reads it), and measure what the checks need
    (``chunk`` frames at a time)."""
    previous = None
    blank, differences = [], []
    with decoder_output() as messages:
        frames = iter_frames(path)
        while block := list(itertools.islice(frames, chunk)):
            block = np.stack(block)
            blank += blank_frames(block).tolist()
            differences += frame_differences(block, previous).tolist()
            previous = block[-1]
    if previous is None:
        raise DataError(f"{path}: no frames")
    differences = np.asarray(differences)
    # blank, or a copy of the frame before (the first frame is no copy)
    damaged = np.asarray(blank) | np.concatenate([[False], differences < COPY_LEVELS])
    longest = current = 0
    for flag in damaged:
        current = current + 1 if flag else 0
        longest = max(longest, current)
    return ClipScan(len(damaged), previous.shape[0], previous.shape[1], longest, differences, messages)


def longest_damaged_run(path: str | Path) -> int:
    """Length of the longest run of consecutive blank or repeated frames of a clip."""
    return scan_clip(path).longest_damaged_run


def validate_clips(paths: list[Path], min_frames: int, damaged_run: int = 0, min_size: int = 16,
                   damaged_jump: float = 0.0) -> None:
    """Every clip decodes, has at least ``min_frames`` frames of at least ``min_size`` pixels,
    no run of ``damaged_run`` blank or repeated frames and no sudden change of ``damaged_jump``
    deviations (see JUMP_RATIO; 0 = that check off).

    All problems of all clips are reported in one error, one line per clip, with what the
    decoder said about a damaged one.
    """
    problems = []
    for path in paths:
        try:
            scan = scan_clip(path)
        except Exception as error:  # decord raises its own DECORDError and RuntimeError
            problems.append(f"{path}: cannot be decoded ({str(error).splitlines()[0]})")
            continue
        found = []
        if scan.frames < min_frames:
            found.append(f"{scan.frames} frames, at least {min_frames} needed")
        if min(scan.height, scan.width) < min_size:
            found.append(f"{scan.width}x{scan.height} pixels, at least {min_size} per side needed")
        if damaged_run and scan.longest_damaged_run >= damaged_run:
            found.append(f"damaged, {scan.longest_damaged_run} consecutive blank or repeated frames "
                         f"(data.damaged_run = {damaged_run})")
        jumps = scan.sudden_changes(damaged_jump)
        if jumps:
            pairs = ", ".join(f"{i}->{i + 1} ({scan.differences[i]:.1f})" for i in jumps[:10])
            found.append(f"damaged encode, sudden changes between frames {pairs} where the clip's median change "
                         f"is {np.median(scan.differences):.1f} (data.damaged_jump = {damaged_jump})")
        if found and scan.decoder_messages:
            found.append(f"the decoder reported {len(scan.decoder_messages)} problem(s), e.g. "
                         f"{scan.decoder_messages[0]!r}")
        elif scan.decoder_messages:
            log.warning("%s: the decoder reported %d problem(s) (e.g. %r); no sudden change between frames, "
                        "so the clip is used", path, len(scan.decoder_messages), scan.decoder_messages[0])
        if found:
            problems.append(f"{path}: " + "; ".join(found))
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


