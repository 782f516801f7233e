"""Foreground masks of the training clips with Segment Anything.

Strategy ``motion``: the clip's temporal median is its background; the pixels of a frame
that differ from it by more than ``motion_threshold`` are moving. Their bounding box
prompts SAM on that frame, and of SAM's three proposals the one that overlaps the moving
pixels best (IoU) is kept. A frame with (almost) no motion is prompted with the whole frame.

Masks are stored per clip as ``<clip>.npz``: ``packed`` = np.packbits of the (F, H, W) bool
masks along W, plus ``width``. A contact sheet with the masks tinted red and the foreground
fraction per clip let a person check them at a glance.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .video_io import atomic_path, read_video, write_png

log = logging.getLogger(__name__)


def motion_masks(frames: np.ndarray, threshold: float) -> np.ndarray:
    """(F, H, W) bool: pixels differing from the clip's temporal median by > threshold."""
    background = np.median(frames, axis=0)
    change = np.abs(frames.astype(np.float32) - background).mean(axis=-1) / 255.0
    return change > threshold


def box_of(mask: np.ndarray, min_area: float, pad: float = 0.05) -> np.ndarray:
    """XYXY box around ``mask`` (padded); the whole frame when the mask is too small."""
    h, w = mask.shape
    if mask.mean() < min_area:
        return np.array([0, 0, w - 1, h - 1], dtype=np.float32)
    ys, xs = np.nonzero(mask)
    dy, dx = pad * h, pad * w
    return np.array([max(0, xs.min() - dx), max(0, ys.min() - dy),
                     min(w - 1, xs.max() + dx), min(h - 1, ys.max() + dy)], dtype=np.float32)


def choose_proposal(proposals: np.ndarray, target: np.ndarray) -> int:
    """Index of the proposal (N, H, W) with the highest IoU with ``target`` (H, W)."""
    inter = (proposals & target).reshape(len(proposals), -1).sum(1)
    union = (proposals | target).reshape(len(proposals), -1).sum(1)
    return int(np.argmax(inter / np.maximum(union, 1)))


def segment_clip(predictor, frames: np.ndarray, threshold: float, min_area: float) -> np.ndarray:
    moving = motion_masks(frames, threshold)
    out = np.zeros(moving.shape, dtype=bool)
    for f, frame in enumerate(frames):
        predictor.set_image(frame)
        proposals, _, _ = predictor.predict(box=box_of(moving[f], min_area), multimask_output=True)
        out[f] = proposals[choose_proposal(proposals, moving[f])]
    return out


def save_masks(path, masks: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, packed=np.packbits(masks, axis=-1), width=masks.shape[-1])


def load_masks(path) -> np.ndarray:
    with np.load(path) as data:
        return np.unpackbits(data["packed"], axis=-1)[..., : int(data["width"])].astype(bool)


def contact_sheet(frames: np.ndarray, masks: np.ndarray, columns: int = 8) -> np.ndarray:
    """Frames with the mask tinted red, tiled in rows of ``columns``."""
    step = max(1, len(frames) // columns)
    picks = list(range(0, len(frames), step))[:columns]
    tinted = []
    for f in picks:
        image = frames[f].astype(np.float32)
        image[masks[f]] = 0.5 * image[masks[f]] + 0.5 * np.array([255, 0, 0])
        tinted.append(image.astype(np.uint8))
    return np.concatenate(tinted, axis=1)


def extract_motion_masks(sam_dir, clip_paths, out_dir, masks_config: dict, device="cpu") -> pd.DataFrame:
    """Masks, a contact sheet per clip, and ``foreground.csv`` for the clips of one motion."""
    from segment_anything import SamPredictor

    from .models.loading import load_sam

    predictor = SamPredictor(load_sam(sam_dir, device=device))
    out_dir = Path(out_dir)
    rows = []
    for path in tqdm(clip_paths, desc="masks"):
        frames = read_video(path)
        masks = segment_clip(predictor, frames, masks_config["motion_threshold"], masks_config["min_area"])
        stem = Path(path).stem
        save_masks(out_dir / f"{stem}.npz", masks)
        write_png(out_dir / f"{stem}_overlay.png", contact_sheet(frames, masks))
        fraction = float(masks.mean())
        rows.append({"clip": stem, "frames": len(frames), "foreground_fraction": fraction})
        if fraction < 0.005 or fraction > 0.95:
            log.warning("%s: foreground covers %.1f%% of the pixels; check %s_overlay.png",
                        path, 100 * fraction, stem)
    table = pd.DataFrame(rows)
    with atomic_path(out_dir / "foreground.csv") as tmp:
        table.to_csv(tmp, index=False)
    return table
