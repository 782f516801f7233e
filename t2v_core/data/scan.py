"""One sequential decode of a clip that measures everything its shots are found from: per frame
whether it is blank, a copy of the one before, its brightness and a thumbnail; per pair of
frames their mean change; the cuts PySceneDetect's detector finds; what the decoder printed."""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..video_io import iter_frames
from .validation import DataError

#: A copy of the frame before: a mean absolute difference below 0.25 levels (real footage,
#: even a still scene, carries more sensor and codec noise than that).
COPY_LEVELS = 0.25
#: A frame is black when fewer than DARK_SHARE of its pixels are brighter than DARK_LEVELS in
#: any channel: film black with its grain, but not a small shape on a black background (a mean
#: threshold, as PySceneDetect's ThresholdDetector has, calls that black too).
DARK_LEVELS = 24
DARK_SHARE = 0.002
#: Width of the thumbnails kept of every frame (what flashes and transients are judged on);
#: 64 pixels keep a 2-minute 60 fps clip's thumbnails under 70 MB.
THUMB_WIDTH = 64
#: PySceneDetect's own defaults: AdaptiveDetector's threshold on the ratio of a frame's content
#: change to its neighbours', and the width its scene manager downscales frames to.
CUT_THRESHOLD = 3.0
DETECTOR_WIDTH = 256


def blank_frames(frames: np.ndarray) -> np.ndarray:
    """Per frame (uint8 (F, H, W, 3)): True if it is one flat colour (a standard deviation below
    2 levels in every channel, on every 4th pixel of every 4th row: a flat frame is flat there
    too, and a float pass over every pixel made the check 15x slower than decoding) or black
    (see DARK_LEVELS, on every 2nd pixel of every 2nd row)."""
    sample = frames[:, ::4, ::4].reshape(len(frames), -1, 3).astype(np.float32)
    bright = (frames[:, ::2, ::2].max(axis=-1) > DARK_LEVELS).reshape(len(frames), -1).mean(axis=1)
    return (sample.std(axis=1).max(axis=-1) < 2.0) | (bright < DARK_SHARE)


def frame_differences(frames: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray:
    """Mean absolute difference (0..255 levels) of every frame to the one before it (to
    ``previous`` for the first; without it, one value fewer than frames)."""
    pairs = frames if previous is None else np.concatenate([previous[None], frames])
    return np.abs(np.diff(pairs.astype(np.int16), axis=0)).mean(axis=(1, 2, 3))


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


def clip_fps(path: str | Path) -> float:
    """The clip's frame rate as its container states it (the average one of a variable rate);
    0 when it states none."""
    import decord

    with decoder_output():
        fps = float(decord.VideoReader(str(path), ctx=decord.cpu(0)).get_avg_fps())
    return fps if np.isfinite(fps) and fps > 0 else 0.0  # 0: not stated


@dataclass
class ClipScan:
    """What one sequential decode of a clip found (frame i of the clip is index i)."""

    frames: int
    height: int
    width: int
    fps: float
    #: Per frame: one flat colour or black.
    blank: np.ndarray
    #: Per frame: a copy of the frame before (False for the first).
    copies: np.ndarray
    #: Per frame: mean intensity, 0..255.
    brightness: np.ndarray
    #: Mean absolute difference of every pair of consecutive frames (0..255 levels).
    differences: np.ndarray
    #: Per frame: an RGB thumbnail THUMB_WIDTH pixels wide.
    thumbs: np.ndarray
    #: First frames of new shots, as PySceneDetect's AdaptiveDetector found them.
    cuts: list[int]
    #: What the decoder printed (ffmpeg's warnings and errors), one line each.
    decoder_messages: list[str]


def longest_run(flags) -> tuple[int, int]:
    """(length, first index) of the longest run of True in ``flags``; (0, 0) when none."""
    longest = start = current = 0
    for i, flag in enumerate(flags):
        current = current + 1 if flag else 0
        if current > longest:
            longest, start = current, i - current + 1
    return longest, start


class _CutDetector:
    """PySceneDetect's AdaptiveDetector fed the frames as its scene manager feeds them (BGR,
    downscaled to about DETECTOR_WIDTH), frame numbers as the clip's."""

    def __init__(self, fps: float, threshold: float):
        import cv2
        from scenedetect import FrameTimecode
        from scenedetect.detectors import AdaptiveDetector
        from scenedetect.scene_manager import compute_downscale_factor

        self.fps = fps if fps > 0 else 25.0  # a timecode needs a rate; cuts are frame numbers
        # min_scene_len 1: a shot shorter than the window is found (and then left out), not
        # merged into its neighbour
        self.detector = AdaptiveDetector(adaptive_threshold=threshold, min_scene_len=1)
        self.resize, self.timecode, self.downscale = cv2.resize, FrameTimecode, compute_downscale_factor
        self.interpolation = cv2.INTER_LINEAR
        self.size: tuple[int, int] | None = None  # the detector's frame size, from the first frame
        self.cuts: list[int] = []
        self.index = 0

    def add(self, frame: np.ndarray) -> None:
        height, width = frame.shape[:2]
        if self.size is None:
            factor = max(1.0, self.downscale(max(height, width), DETECTOR_WIDTH))
            self.size = (max(1, round(width / factor)), max(1, round(height / factor)))
        image = np.ascontiguousarray(frame[:, :, ::-1])
        if self.size != (width, height):
            image = self.resize(image, self.size, interpolation=self.interpolation)
        self.cuts += [c.frame_num for c in self.detector.process_frame(self.timecode(self.index, self.fps), image)]
        self.index += 1

    def finish(self) -> list[int]:
        last = self.timecode(max(self.index - 1, 0), self.fps)
        self.cuts += [c.frame_num for c in self.detector.post_process(last)]
        return sorted({c for c in self.cuts if 0 < c < self.index})


def thumbnails(frames: np.ndarray) -> np.ndarray:
    """(F, H, W, 3) uint8 frames as (F, h, THUMB_WIDTH, 3) thumbnails (area-averaged)."""
    import cv2

    height, width = frames.shape[1:3]
    size = (min(THUMB_WIDTH, width), max(1, round(height * min(THUMB_WIDTH, width) / width)))
    return np.stack([cv2.resize(frame, size, interpolation=cv2.INTER_AREA) for frame in frames])


def scan_clip(path: str | Path, cut_threshold: float = CUT_THRESHOLD, chunk: int = 32) -> ClipScan:
    """Decode a clip once, in order (as training reads it), ``chunk`` frames at a time, and
    measure what finding its shots needs."""
    fps = clip_fps(path)
    detector = _CutDetector(fps, cut_threshold)
    previous = None
    blank, differences, brightness, thumbs = [], [], [], []
    with decoder_output() as messages:
        frames = iter_frames(path)
        while block := list(itertools.islice(frames, chunk)):
            block = np.stack(block)
            blank += blank_frames(block).tolist()
            brightness += block[:, ::4, ::4].reshape(len(block), -1).mean(axis=1).tolist()
            differences += frame_differences(block, previous).tolist()
            thumbs.append(thumbnails(block))
            for frame in block:
                detector.add(frame)
            previous = block[-1]
    if previous is None:
        raise DataError(f"{path}: no frames")
    differences = np.asarray(differences)
    copies = np.concatenate([[False], differences < COPY_LEVELS])
    return ClipScan(len(blank), previous.shape[0], previous.shape[1], fps, np.asarray(blank), copies,
                    np.asarray(brightness), differences, np.concatenate(thumbs), detector.finish(), messages)
