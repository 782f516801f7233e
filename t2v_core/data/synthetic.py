"""A deterministic few-shot set of moving shapes, for the demo and the tests.

Each motion is a direction read from its name (``..._right``, ``..._up``, ``..._left``,
``..._down``; any other name gets a direction drawn from the seed). Each clip is one shape
of the motion's subject (``circle``; anything else is drawn as a square) in a random
colour, moving over a textured background; first frames show the shape at its start.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..prompts import prompt_id
from ..video_io import write_mp4, write_png

DIRECTIONS = {"right": (1.0, 0.0), "left": (-1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}
COLOURS = {
    "red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 80, 230),
    "yellow": (235, 215, 40), "white": (245, 245, 245), "purple": (150, 60, 200),
}


def _rng(seed: int, *keys: str) -> np.random.Generator:
    digest = hashlib.sha256("/".join((str(seed),) + keys).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def motion_direction(motion: str, seed: int) -> tuple[float, float]:
    for word, direction in DIRECTIONS.items():
        if motion.endswith(word):
            return direction
    angle = _rng(seed, motion, "direction").uniform(0, 2 * np.pi)
    return float(np.cos(angle)), float(np.sin(angle))


def _background(rng, height, width) -> np.ndarray:
    base = rng.integers(20, 120, size=3)
    texture = rng.normal(0, 12, size=(height // 8 + 1, width // 8 + 1, 1))
    texture = np.kron(texture, np.ones((8, 8, 1)))[:height, :width]
    return np.clip(base + texture, 0, 255)


def _draw(frame, subject, centre, radius, colour):
    height, width = frame.shape[:2]
    yy, xx = np.mgrid[0:height, 0:width]
    cy, cx = centre
    if subject == "circle":
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
    else:
        inside = (np.abs(yy - cy) <= radius) & (np.abs(xx - cx) <= radius)
    frame[inside] = colour
    return inside


def render_clip(motion, subject, index, seed, num_frames, height, width, colour=None):
    """Frames (F, H, W, 3) uint8 and ground-truth masks (F, H, W) bool of one clip."""
    rng = _rng(seed, motion, f"clip{index}")
    dx, dy = motion_direction(motion, seed)
    radius = max(3, int(min(height, width) * rng.uniform(0.12, 0.18)))
    travel = 0.5 * min(height, width)
    start = np.array([height / 2 - dy * travel / 2, width / 2 - dx * travel / 2])
    start += rng.uniform(-0.08, 0.08, size=2) * [height, width]
    colour = np.array(colour if colour is not None else list(COLOURS.values())[rng.integers(len(COLOURS))])
    background = _background(rng, height, width)
    frames, masks = [], []
    for f in range(num_frames):
        centre = start + np.array([dy, dx]) * travel * f / max(1, num_frames - 1)
        frame = background.copy()
        masks.append(_draw(frame, subject, centre, radius, colour))
        frames.append(frame.astype(np.uint8))
    return np.stack(frames), np.stack(masks)


def synthesize_motion_clips(out_dir, motion, subject, seed, num_clips, num_frames, height, width, fps=8):
    """Write ``clip_XXX.mp4`` files of one motion into ``out_dir``; return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(num_clips):
        frames, _ = render_clip(motion, subject, index, seed, num_frames, height, width)
        path = out_dir / f"clip_{index:03d}.mp4"
        write_mp4(path, frames, fps=fps)
        paths.append(path)
    return paths


def synthesize_first_frame(path, motion, subject, prompt, seed, height, width):
    """A first frame for ``prompt``: the subject at the motion's start, colour from the prompt."""
    words = prompt.lower().replace(",", " ").split()
    colour = next((COLOURS[w] for w in words if w in COLOURS), None)
    index = int(prompt_id(prompt).rsplit("-", 1)[1], 16) % 1000
    frames, _ = render_clip(motion, subject, 1000 + index, seed, 1, height, width, colour)
    write_png(path, frames[0])
