"""Ground-truth motion metric of the toy world: does a generated video's subject do what the
prompt says?

The prompt names the subject's colour, so the subject is found by colour: a pixel belongs to
it when, of the world's palette (the four subject colours and the three backgrounds), the
named colour is the nearest and is near enough. From the first to the last frame where it is
found we measure the shift, the area ratio and the rotation. Rotation is followed frame to
frame (the rotated previous mask that best overlaps the current one, within +-30 degrees), so
it sees turns of less than 30 degrees per frame and nothing of a circle's turn, which no one
can see.
"""

from __future__ import annotations

import math
import re

import numpy as np

from .world import BACKGROUNDS, COLOURS, EXPECTED_CHANGE, MOTIONS

MAX_COLOUR_DISTANCE = 110.0
MIN_TRACKED_FRACTION = 0.5
STILL_SHIFT = 0.1  # shifts under a tenth of the frame count as staying in place
_PALETTE = np.array(list(COLOURS.values()) + list(BACKGROUNDS.values()), float)


def parse_prompt(prompt: str) -> tuple[str | None, str | None]:
    """(colour, motion) named in a prompt; None for what it does not name."""
    text = prompt.lower()
    colour = next((c for c in COLOURS if re.search(rf"\b{c}\b", text)), None)
    motion = next((m for m in MOTIONS if m in text), None)
    return colour, motion


def subject_masks(frames: np.ndarray, colour: str) -> np.ndarray:
    """(F, H, W) bool: pixels whose nearest palette colour is ``colour``, within reach."""
    distances = np.linalg.norm(frames[..., None, :].astype(float) - _PALETTE, axis=-1)
    index = list(COLOURS).index(colour)
    return (distances.argmin(-1) == index) & (distances[..., index] < MAX_COLOUR_DISTANCE)


def _rotation_step(previous: np.ndarray, current: np.ndarray, candidates: np.ndarray) -> float:
    """Angle (radians) turning ``previous`` onto ``current`` about its centroid, best overlap.
    A turn must beat no turn by 2% of the pixels: a round or blurred blob's pixel jitter would
    otherwise add up to a spin."""
    ys, xs = np.nonzero(current)
    py, px = np.nonzero(previous)
    cy, cx = py.mean(), px.mean()
    qy, qx = ys.mean(), xs.mean()
    height, width = previous.shape
    best, best_overlap, still = 0.0, -1, None
    for angle in candidates:  # the first candidate is 0
        # where each current pixel was before turning by `angle` (centre moved with the subject)
        cos, sin = math.cos(-angle), math.sin(-angle)
        dx, dy = xs - qx, ys - qy
        sx = np.rint(cx + cos * dx - sin * dy).astype(int)
        sy = np.rint(cy + sin * dx + cos * dy).astype(int)
        ok = (sx >= 0) & (sx < width) & (sy >= 0) & (sy < height)
        overlap = int(previous[sy[ok], sx[ok]].sum())
        still = overlap if still is None else still
        if overlap > best_overlap:
            best, best_overlap = angle, overlap
    return best if best_overlap > still + 0.02 * len(xs) else 0.0


def track_subject(frames: np.ndarray, colour: str, min_pixels: int = 4) -> dict:
    """Per frame: centroid (F, 2) as x, y in pixels (NaN where not found), area (F,) as a
    fraction of the frame, found (F,), and the rotation (F,) in degrees since the first frame
    where it was found (accumulated between consecutive found frames)."""
    masks = subject_masks(frames, colour)
    num_frames, height, width = masks.shape
    area = masks.reshape(num_frames, -1).mean(1)
    found = masks.reshape(num_frames, -1).sum(1) >= max(min_pixels, 0.002 * height * width)
    centroid = np.full((num_frames, 2), np.nan)
    rotation = np.full(num_frames, np.nan)
    candidates = np.deg2rad(np.arange(-30, 31, 2.0))
    candidates = candidates[np.argsort(np.abs(candidates), kind="stable")]  # smallest turn first
    previous, turned = None, 0.0
    for f in np.flatnonzero(found):
        ys, xs = np.nonzero(masks[f])
        centroid[f] = xs.mean(), ys.mean()
        if previous is not None:
            turned += _rotation_step(masks[previous], masks[f], candidates)
        rotation[f] = np.rad2deg(turned)
        previous = f
    return {"centroid": centroid, "area": area, "found": found, "rotation": rotation, "masks": masks}


def consecutive_overlap(masks: np.ndarray) -> float:
    """100 x the mean IoU of the masks of consecutive frames (pairs where both are empty are
    skipped; NaN when all are): high for a subject that moves smoothly, low for one that jumps."""
    union = (masks[1:] | masks[:-1]).sum(axis=(1, 2))
    overlap = (masks[1:] & masks[:-1]).sum(axis=(1, 2))[union > 0] / union[union > 0]
    return float(100.0 * overlap.mean()) if len(overlap) else math.nan


def score_motion(frames: np.ndarray, colour: str, motion: str) -> dict:
    """Whether the subject's dominant change over the video is ``motion``, and how large it is
    against the world's training clips (magnitude_ratio 1.0 = as much as they move)."""
    if motion not in MOTIONS:
        raise ValueError(f"unknown motion {motion!r}: expected one of {MOTIONS}")
    track = track_subject(frames, colour)
    found = np.flatnonzero(track["found"])
    tracked = float(track["found"].mean())
    result = {"motion": motion, "colour": colour, "tracked_fraction": tracked, "direction_correct": False,
              "magnitude_ratio": math.nan, "dx": math.nan, "dy": math.nan, "area_ratio": math.nan,
              "rotation_deg": math.nan, "subject_consistency": consecutive_overlap(track["masks"])}
    if tracked < MIN_TRACKED_FRACTION or len(found) < 2:
        return result
    first, last = found[0], found[-1]
    height, width = frames.shape[1:3]
    dx = (track["centroid"][last, 0] - track["centroid"][first, 0]) / width
    dy = (track["centroid"][last, 1] - track["centroid"][first, 1]) / height
    area_ratio = track["area"][last] / track["area"][first]
    rotation = track["rotation"][last]
    shift = math.hypot(dx, dy)
    same_size = 0.6 < area_ratio < 1.6
    if motion == "moves right":
        correct, measured = dx > STILL_SHIFT and dx > 2 * abs(dy) and same_size, dx
    elif motion == "moves up":
        correct, measured = -dy > STILL_SHIFT and -dy > 2 * abs(dx) and same_size, -dy
    elif motion == "grows":
        correct, measured = area_ratio > 1.8 and shift < STILL_SHIFT, math.log(area_ratio) / math.log(EXPECTED_CHANGE[motion])
    else:
        correct, measured = abs(rotation) > 30 and shift < STILL_SHIFT and same_size, abs(rotation)
    if motion != "grows":
        measured = measured / EXPECTED_CHANGE[motion]
    result.update(direction_correct=bool(correct), magnitude_ratio=float(measured), dx=float(dx), dy=float(dy),
                  area_ratio=float(area_ratio), rotation_deg=float(rotation))
    return result
