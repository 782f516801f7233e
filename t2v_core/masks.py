"""Foreground masks of the training clips with Segment Anything.

Two strategies choose the subject (``masks.strategy``):

``motion`` (default)
    The clip's temporal median is its background; pixels that differ from it by more than
    ``motion_threshold`` are moving. Specks (compression noise, flicker) are removed by a
    morphological opening and the connected regions much smaller than the largest are
    dropped; the box around what remains prompts SAM on that frame, and of SAM's three
    proposals the one that overlaps the moving pixels best (IoU) is kept. A frame with
    (almost) no motion is prompted with the whole frame.
``clip_subject``
    SAM's automatic proposals on the first frame are cropped and scored by CLIP against
    "a photo of a <subject>" (the motion's subject noun); the best one is followed through
    the clip by prompting SAM on each frame with the previous mask's box and keeping the
    proposal that overlaps the previous mask best.

Masks are stored per clip as ``<clip>.npz``: ``packed`` = np.packbits of the (F, H, W) bool
masks along W, plus ``width``. A contact sheet with the masks tinted red and the foreground
fraction per clip let a person check them at a glance; clips that come with ground-truth
masks (``ground_truth/<clip>.npz`` beside them, which a generated data source may write) also
get SAM's mean IoU against them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from .atomic import atomic_dir
from .video_io import atomic_path, read_video, write_png

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)
#: Where clips that come with ground-truth masks keep them, in the clips' folder.
GROUND_TRUTH_DIR = "ground_truth"
STRATEGIES = ("motion", "clip_subject")


def motion_masks(frames: np.ndarray, threshold: float, chunk: int = 8) -> np.ndarray:
    """(F, H, W) bool: pixels differing from the clip's temporal median by > threshold.

    The median and the differences are computed a block at a time: a float copy of a long
    clip (real footage: hundreds of frames) would take gigabytes."""
    rows = max(1, (1 << 22) // (len(frames) * frames[0, 0].size))  # ~4M values per median block
    background = np.concatenate([np.median(frames[:, r:r + rows], axis=0) for r in range(0, frames.shape[1], rows)])
    out = np.empty(frames.shape[:3], dtype=bool)
    for start in range(0, len(frames), chunk):
        change = np.abs(frames[start:start + chunk].astype(np.float32) - background).mean(axis=-1) / 255.0
        out[start:start + chunk] = change > threshold
    return out


def clean_motion(mask: np.ndarray, keep_fraction: float = 0.2) -> np.ndarray:
    """``mask`` without specks: opened with a square kernel of ~1% of the frame, then only the
    connected regions at least ``keep_fraction`` of the largest one's area are kept.

    The opening runs as separable minimum and maximum filters (a square is the product of two
    lines), equal to a binary opening with the square but tens of times faster on full-size
    frames; outside the frame counts as background, as in scipy's binary opening."""
    from scipy import ndimage

    size = 2 * max(1, round(0.01 * max(mask.shape))) + 1
    eroded = ndimage.minimum_filter(mask, size=size, mode="constant", cval=False)
    opened = ndimage.maximum_filter(eroded, size=size, mode="constant", cval=False)
    labels, count = ndimage.label(opened)
    if count == 0:
        return opened
    areas = np.bincount(labels.ravel())[1:]
    keep = np.flatnonzero(areas >= keep_fraction * areas.max()) + 1
    return np.isin(labels, keep)


def box_of(mask: np.ndarray, min_area: float, pad: float = 0.05) -> np.ndarray:
    """XYXY box around ``mask`` (padded); the whole frame when the mask is too small."""
    h, w = mask.shape
    if mask.mean() < min_area:
        return np.array([0, 0, w - 1, h - 1], dtype=np.float32)
    ys, xs = np.nonzero(mask)
    dy, dx = pad * h, pad * w
    return np.array([max(0, xs.min() - dx), max(0, ys.min() - dy),
                     min(w - 1, xs.max() + dx), min(h - 1, ys.max() + dy)], dtype=np.float32)


def mask_iou(masks: np.ndarray, target: np.ndarray) -> np.ndarray:
    """IoU of each of ``masks`` (N, H, W) with ``target`` (H, W)."""
    inter = (masks & target).reshape(len(masks), -1).sum(1)
    union = (masks | target).reshape(len(masks), -1).sum(1)
    return inter / np.maximum(union, 1)


def choose_proposal(proposals: np.ndarray, target: np.ndarray) -> int:
    """Index of the proposal (N, H, W) with the highest IoU with ``target`` (H, W)."""
    return int(np.argmax(mask_iou(proposals, target)))


def centred_iou(proposals: np.ndarray, target: np.ndarray) -> np.ndarray:
    """IoU of each proposal with ``target`` after moving its centroid onto the target's: a
    shape match that ignores how far the subject moved since the previous frame."""
    from scipy import ndimage

    if not target.any():
        return mask_iou(proposals, target)
    centre = np.array(ndimage.center_of_mass(target))
    moved = []
    for proposal in proposals:
        if not proposal.any():
            moved.append(proposal)
            continue
        shift = np.round(centre - np.array(ndimage.center_of_mass(proposal))).astype(int)
        moved.append(ndimage.shift(proposal, shift, order=0, mode="constant", cval=False))
    return mask_iou(np.stack(moved), target)


def segment_by_motion(predictor, frames: np.ndarray, threshold: float, min_area: float) -> np.ndarray:
    moving = motion_masks(frames, threshold)
    out = np.zeros(moving.shape, dtype=bool)
    for f, frame in enumerate(frames):
        predictor.set_image(frame)
        box = box_of(clean_motion(moving[f]), min_area)
        proposals, _, _ = predictor.predict(box=box, multimask_output=True)
        out[f] = proposals[choose_proposal(proposals, moving[f])]
    return out


def masked_crop(frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The box around ``mask`` cut from ``frame``, pixels outside the mask grey: what CLIP scores."""
    x0, y0, x1, y1 = box_of(mask, min_area=0.0, pad=0.0).astype(int)
    crop = np.where(mask[..., None], frame, 127).astype(np.uint8)
    return crop[y0:y1 + 1, x0:x1 + 1]


def choose_by_text(embedder, frame: np.ndarray, proposals: np.ndarray, text: str) -> int:
    """Index of the proposal whose masked crop is closest to ``text`` in CLIP space."""
    crops = [masked_crop(frame, p) for p in proposals]
    scores = embedder.frames(crops) @ embedder.text(text)
    return int(np.argmax(scores))


def track(predictor, frames: np.ndarray, first: np.ndarray, min_area: float) -> np.ndarray:
    """Follow ``first`` (the subject's mask on frame 0) through the clip: SAM prompted with
    the previous mask's box, the proposal whose shape matches the previous mask best kept
    (overlap alone would prefer a loose box over the subject once it has moved)."""
    out = np.zeros(frames.shape[:3], dtype=bool)
    out[0] = first
    for f in range(1, len(frames)):
        predictor.set_image(frames[f])
        proposals, _, _ = predictor.predict(box=box_of(out[f - 1], min_area), multimask_output=True)
        out[f] = proposals[int(np.argmax(centred_iou(proposals, out[f - 1])))]
    return out


def segment_by_subject(predictor, generator, embedder, frames: np.ndarray, subject: str,
                       masks_config: dict) -> np.ndarray | None:
    """Masks following the proposal that CLIP matches best with ``subject``; None when SAM
    proposes nothing on the first frame (the caller falls back to ``motion``)."""
    proposals = [m["segmentation"] for m in generator.generate(frames[0])]
    if not proposals:
        return None
    proposals = np.stack(proposals).astype(bool)
    text = masks_config["subject_template"].format(subject=subject)
    first = proposals[choose_by_text(embedder, frames[0], proposals, text)]
    return track(predictor, frames, first, masks_config["min_area"])


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


class SubjectSegmenter:
    """The models of one strategy, loaded once per motion; ``segment(frames)`` gives masks."""

    def __init__(self, sam_dir, masks_config: dict, subject: str = "", clip_dir=None, device="cpu"):
        from segment_anything import SamAutomaticMaskGenerator, SamPredictor

        from .models.loading import load_clip, load_sam

        strategy = masks_config["strategy"]
        if strategy not in STRATEGIES:
            raise ValueError(f"masks.strategy: unknown strategy {strategy!r}; choose one of {STRATEGIES}")
        if strategy == "clip_subject" and (clip_dir is None or not subject):
            raise ValueError("masks.strategy clip_subject needs the CLIP model and the motion's subject")
        self.config, self.subject, self.strategy = masks_config, subject, strategy
        sam = load_sam(sam_dir, device=device)
        self.predictor = SamPredictor(sam)
        if strategy == "clip_subject":
            from .models.loading import ClipEmbedder

            model, preprocess, tokenizer = load_clip(clip_dir, device=device)
            self.embedder = ClipEmbedder(model, preprocess, tokenizer, device=device)
            self.generator = SamAutomaticMaskGenerator(
                sam, points_per_side=masks_config["points_per_side"],
                pred_iou_thresh=masks_config["proposal_iou_threshold"],
                stability_score_thresh=masks_config["proposal_stability_threshold"],
            )

    def segment(self, frames: np.ndarray, name: str = "clip") -> np.ndarray:
        if self.strategy == "clip_subject":
            masks = segment_by_subject(self.predictor, self.generator, self.embedder, frames,
                                       self.subject, self.config)
            if masks is not None:
                return masks
            log.warning("%s: SAM proposed no region on the first frame; using the motion strategy", name)
        return segment_by_motion(self.predictor, frames, self.config["motion_threshold"],
                                 self.config["min_area"])


def extract_motion_masks(sam_dir, clip_paths, out_dir, masks_config: dict, subject: str = "",
                         clip_dir=None, device="cpu") -> pd.DataFrame:
    """Masks, a contact sheet per clip, and ``foreground.csv`` for the clips of one motion."""
    segmenter = SubjectSegmenter(sam_dir, masks_config, subject, clip_dir, device)
    with atomic_dir(out_dir) as work:  # the folder gets its name when every clip is done
        return _extract_into(segmenter, clip_paths, work)


def _extract_into(segmenter, clip_paths, out_dir: Path) -> pd.DataFrame:
    rows = []
    for path in tqdm(clip_paths, desc="masks"):
        frames = read_video(path)
        masks = segmenter.segment(frames, name=str(path))
        stem = Path(path).stem
        save_masks(out_dir / f"{stem}.npz", masks)
        write_png(out_dir / f"{stem}_overlay.png", contact_sheet(frames, masks))
        fraction = float(masks.mean())
        rows.append({"clip": stem, "frames": len(frames), "foreground_fraction": fraction})
        truth = Path(path).parent / GROUND_TRUTH_DIR / f"{stem}.npz"
        if truth.exists():  # clips drawn with their masks: how well SAM found the subject
            rows[-1]["ground_truth_iou"] = float(mask_iou(masks, load_masks(truth)).mean())
        if fraction < 0.005 or fraction > 0.95:
            log.warning("%s: foreground covers %.1f%% of the pixels; check %s_overlay.png",
                        path, 100 * fraction, stem)
    import pandas as pd  # here, not at the top: every job loads this module (the toy plugin), few write tables

    table = pd.DataFrame(rows)
    with atomic_path(out_dir / "foreground.csv") as tmp:
        table.to_csv(tmp, index=False)
    return table
