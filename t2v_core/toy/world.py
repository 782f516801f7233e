"""The toy world: flat-coloured shapes on plain backgrounds, captioned, and short clips of one
shape performing one motion, with the ground-truth mask of every frame.

Everything is deterministic from a seed. Shapes are drawn with 4x4 supersampling, so edges are
anti-aliased at 32 to 64 pixels; a pixel belongs to the mask when the shape covers at least
half of it. ``radius`` is half the shape's extent: the half side of a square, the radius of a
circle, the circumradius of a triangle and the outer radius of a star.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np

SHAPES = ("circle", "square", "triangle", "star")
COLOURS = {"red": (220, 40, 40), "green": (40, 190, 60), "blue": (50, 80, 230), "yellow": (240, 220, 40)}
BACKGROUNDS = {"black": (0, 0, 0), "white": (255, 255, 255), "gray": (128, 128, 128)}
MOTIONS = ("moves right", "moves up", "grows", "spins")
#: Motions of the world that the demo never asks for: the toy motion adapter (AnimateDiff's
#: pretrained motion module) learns from these only, so that, as in reality, the few-shot
#: methods' motions are new to it. Each is one of MOTIONS played backwards.
PRETRAINING_MOTIONS = {"moves left": "moves right", "moves down": "moves up", "shrinks": "grows"}
#: The change each motion makes over a clip, on average: shift as a fraction of the frame,
#: area ratio last/first, rotation in degrees (the motion metric's magnitude 1.0).
EXPECTED_CHANGE = {"moves right": 0.425, "moves up": 0.425, "grows": 4.0, "spins": 105.0}
SUPERSAMPLING = 4
STAR_INNER = 0.45  # inner radius of the star's five notches, as a fraction of the outer one


@dataclass(frozen=True)
class Subject:
    shape: str
    colour: str
    background: str


def _rng(seed: int, *keys: str) -> np.random.Generator:
    digest = hashlib.sha256("/".join((str(seed),) + keys).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def caption(subject: Subject, motion: str | None = None) -> str:
    action = f" {motion}" if motion else ""
    return f"a {subject.colour} {subject.shape}{action} on a {subject.background} background"


def toy_motion(name: str) -> str:
    """The world's motion of a config motion name (``moves_right`` -> ``moves right``)."""
    motion = name.replace("_", " ")
    if motion not in MOTIONS:
        raise ValueError(f"not a toy world motion ({name!r}); expected one of "
                         f"{', '.join(m.replace(' ', '_') for m in MOTIONS)}")
    return motion


def parse_caption(prompt: str) -> tuple[Subject, str | None]:
    """The subject (shape, colour, background) and motion (None if none) a prompt names.

    Words are matched whole and in any order (subject colours and background colours are
    distinct words), so "a red square moves right on a white background" and "on white, a red
    square moves right" agree; a prompt that does not name
    one shape, one colour and one background is an error that quotes it.
    """
    text = prompt.lower()
    found = {}
    for part, names in (("shape", SHAPES), ("colour", COLOURS), ("background", BACKGROUNDS)):
        named = [name for name in names if re.search(rf"\b{name}\b", text)]
        if len(named) != 1:
            raise ValueError(f"prompt {prompt!r}: names {len(named)} of the toy world's {part}s "
                             f"({', '.join(names)}); it must name exactly one")
        found[part] = named[0]
    motion = next((m for m in MOTIONS if m in text), None)
    return Subject(**found), motion


def _vertices(shape: str, center, radius: float, angle: float) -> np.ndarray:
    if shape == "square":
        k, radii, start = 4, np.full(4, radius * np.sqrt(2)), np.pi / 4
    elif shape == "triangle":
        k, radii, start = 3, np.full(3, radius), -np.pi / 2
    else:  # star: ten vertices alternating between the outer and the inner radius
        k, radii, start = 10, np.tile([radius, radius * STAR_INNER], 5), -np.pi / 2
    angles = start + angle + np.arange(k) * 2 * np.pi / k
    return np.stack([center[0] + radii * np.cos(angles), center[1] + radii * np.sin(angles)], axis=1)


def _inside_polygon(xs: np.ndarray, ys: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Even-odd rule, vectorised over the pixels (one pass per edge)."""
    inside = np.zeros(xs.shape, bool)
    for (x1, y1), (x2, y2) in zip(vertices, np.roll(vertices, -1, axis=0)):
        if y1 == y2:
            continue
        crosses = (y1 > ys) != (y2 > ys)
        inside ^= crosses & (xs < (x2 - x1) * (ys - y1) / (y2 - y1) + x1)
    return inside


def coverage(shape: str, size: int, center, radius: float, angle: float = 0.0) -> np.ndarray:
    """Fraction of every pixel that the shape covers, (size, size) float in [0, 1]."""
    s = SUPERSAMPLING
    ys, xs = (np.mgrid[0:size * s, 0:size * s] + 0.5) / s
    if shape == "circle":
        inside = (xs - center[0]) ** 2 + (ys - center[1]) ** 2 <= radius**2
    else:
        inside = _inside_polygon(xs, ys, _vertices(shape, center, radius, angle))
    return inside.reshape(size, s, size, s).mean(axis=(1, 3))


def render(subject: Subject, size: int, center, radius: float, angle: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Image uint8 (size, size, 3) and mask bool (size, size); ``center`` is (x, y) in pixels."""
    cover = coverage(subject.shape, size, center, radius, angle)[..., None]
    background = np.asarray(BACKGROUNDS[subject.background], float)
    colour = np.asarray(COLOURS[subject.colour], float)
    image = np.rint(background * (1 - cover) + colour * cover).astype(np.uint8)
    return image, cover[..., 0] >= 0.5


def random_subject(rng: np.random.Generator, motion: str | None = None) -> Subject:
    # a spinning circle looks still: spins never draws one
    shapes = [s for s in SHAPES if not (motion == "spins" and s == "circle")]
    return Subject(shapes[rng.integers(len(shapes))], list(COLOURS)[rng.integers(len(COLOURS))],
                   list(BACKGROUNDS)[rng.integers(len(BACKGROUNDS))])


def extent(shape: str, radius: float) -> float:
    """Largest distance of the shape from its centre at any rotation, plus a pixel: the
    margin that keeps it whole and off the border."""
    return (radius * np.sqrt(2) if shape == "square" else radius) + 1.0


def sample_images(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``n`` still images of random subjects: images (n, S, S, 3), masks (n, S, S), captions."""
    rng = _rng(seed, "images")
    images, masks, captions = np.empty((n, size, size, 3), np.uint8), np.empty((n, size, size), bool), []
    for i in range(n):
        subject = random_subject(rng)
        radius = rng.uniform(0.12, 0.3) * size
        margin = extent(subject.shape, radius)
        center = rng.uniform(margin, size - margin, 2)
        images[i], masks[i] = render(subject, size, center, radius, rng.uniform(0, 2 * np.pi))
        captions.append(caption(subject))
    return images, masks, captions


def _trajectory(motion: str, shape: str, size: int, rng: np.random.Generator):
    """Centre, radius and angle at t=0 and t=1 of one clip; the subject stays in frame."""
    angle = rng.uniform(0, 2 * np.pi)
    if motion in ("moves right", "moves up"):
        radius = rng.uniform(0.12, 0.18) * size
        margin = extent(shape, radius)
        # a large subject leaves less room: the shift is cut to what keeps it in frame (a draw
        # that fits is unchanged)
        shift = min(rng.uniform(0.35, 0.5) * size, size - 2 * margin)
        along = rng.uniform(margin, size - margin - shift)
        across = rng.uniform(margin, size - margin)
        if motion == "moves right":
            return (along, across), (along + shift, across), (radius, radius), (angle, angle)
        return (across, size - along), (across, size - along - shift), (radius, radius), (angle, angle)
    if motion == "grows":
        start, factor = rng.uniform(0.1, 0.13) * size, rng.uniform(1.8, 2.2)
        margin = extent(shape, start * factor)
        center = tuple(rng.uniform(margin, size - margin, 2))
        return center, center, (start, start * factor), (angle, angle)
    if motion == "spins":
        radius = rng.uniform(0.18, 0.28) * size
        margin = extent(shape, radius)
        center = tuple(rng.uniform(margin, size - margin, 2))
        turn = np.deg2rad(rng.uniform(90, 120)) * rng.choice([-1, 1])
        return center, center, (radius, radius), (angle, angle + turn)
    if motion in PRETRAINING_MOTIONS:
        c0, c1, (r0, r1), (a0, a1) = _trajectory(PRETRAINING_MOTIONS[motion], shape, size, rng)
        return c1, c0, (r1, r0), (a1, a0)
    raise ValueError(f"unknown motion {motion!r}: expected one of {MOTIONS + tuple(PRETRAINING_MOTIONS)}")


def motion_clip(motion: str, subject: Subject, num_frames: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames uint8 (F, S, S, 3) and ground-truth masks bool (F, S, S): one subject, one motion,
    changing linearly from the first frame to the last."""
    rng = _rng(seed, motion, caption(subject))
    c0, c1, (r0, r1), (a0, a1) = _trajectory(motion, subject.shape, size, rng)
    frames = np.empty((num_frames, size, size, 3), np.uint8)
    masks = np.empty((num_frames, size, size), bool)
    for f in range(num_frames):
        t = f / max(1, num_frames - 1)
        center = (c0[0] + t * (c1[0] - c0[0]), c0[1] + t * (c1[1] - c0[1]))
        frames[f], masks[f] = render(subject, size, center, r0 + t * (r1 - r0), a0 + t * (a1 - a0))
    return frames, masks


def first_frame(prompt: str, size: int, seed: int) -> np.ndarray:
    """The first frame of a toy prompt, uint8 (size, size, 3): its subject where a training
    clip of its motion would start (centred and still without a motion)."""
    subject, motion = parse_caption(prompt)
    if motion is None:
        return render(subject, size, (size / 2, size / 2), 0.2 * size)[0]
    return motion_clip(motion, subject, 1, size, seed)[0][0]


def motion_clips(motion: str, count: int, num_frames: int, size: int, seed: int) -> list[tuple[Subject, np.ndarray, np.ndarray]]:
    """``count`` clips of one motion, subjects drawn from the seed."""
    rng = _rng(seed, motion, "clips")
    clips = []
    for k in range(count):
        subject = random_subject(rng, motion)
        clips.append((subject, *motion_clip(motion, subject, num_frames, size, seed * 1000 + k)))
    return clips
