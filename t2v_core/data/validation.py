"""Checks of the data before anything uses it: first frames that decode at the videos' aspect
ratio, and sha256 sums against a manifest (the clips' own checks find their shots: .shots)."""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

from ..atomic import atomic_path
from ..download import sha256_of

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")
CHECKSUM_FILE = "clips.sha256"


class DataError(RuntimeError):
    """Data that cannot be used; the message names every file and what is wrong with it."""


def list_clips(folder: str | Path) -> list[Path]:
    """The video files of ``folder`` (not hidden, known video suffix), sorted by name."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith("."))


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


