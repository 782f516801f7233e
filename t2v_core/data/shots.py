"""Shots, not clips, are what a motion is trained on.

A clip (film or web footage cut by hand) is read as a row of spans of frames:
- **shots**, between the cuts PySceneDetect's AdaptiveDetector finds: the parts of them that are
  picture are what training draws its windows from, each on its own, never across a boundary;
- **blank** frames (one flat colour, or black), as a lead-in, a lead-out or a dip between shots,
  and the **fades** beside them (frames still well off the shot's own brightness);
- **flashes**: one to TRANSIENT_FRAMES frames that jump away and back (the frames either side
  match), by a change of the whole frame's brightness;
- **damage**: the same kind of transient but local (macroblock garbage), or a sudden change
  inside a shot that no cut explains, or a run of repeated frames: the clip is refused.

Everything but the picture of a shot is left out, and so is a shot shorter than the training
window; what was left out and why is kept in :class:`Span` for the clip report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .scan import CUT_THRESHOLD, ClipScan, longest_run

#: A sudden change between two frames: their mean absolute difference exceeds the median one
#: by a number of robust standard deviations (1.4826 x the median absolute deviation), and is
#: also JUMP_RATIO times the median and JUMP_MIN_LEVELS intensity levels above it (guards for
#: footage whose changes hardly vary). Real footage stays below ~8 deviations (the shared test
#: clips: 7.7, 7.2, 3.3); the check needs JUMP_MIN_PAIRS frame pairs.
JUMP_RATIO = 4.0
JUMP_MIN_LEVELS = 5.0
JUMP_MIN_PAIRS = 8
#: The deviations at which a change is looked at as the edge of a transient (a flash or a burst
#: of damage), whatever ``data.damaged_jump`` is: lower than a damage check's, because a
#: transient must also come back to a frame that matches the one before it (_matching).
TRANSIENT_DEVIATIONS = 5.0
#: The longest transient: a flash or a burst lasts at most this many frames.
TRANSIENT_FRAMES = 3
#: A transient frame is a flash when both the mean of its change and the median of the change's
#: size are at least this share of the change's mean size: the whole frame brightens or darkens,
#: where damage changes some blocks of it a lot and the rest not at all.
FLASH_SHARE = 0.5
#: Frames beside a blank run are a fade while their brightness is more than this fraction (plus
#: 2 levels) off the median of the next (or last) FADE_REFERENCE frames of their shot (at 10%
#: the last step of a fade was still a sudden change in its shot).
FADE_TOLERANCE = 0.05
FADE_REFERENCE = 48
SHOT_MODES = ("split", "longest", "reject")


def sudden_changes(differences: np.ndarray, deviations: float) -> np.ndarray:
    """Indices i of the frame pairs (i, i+1) whose change is sudden (see JUMP_RATIO)."""
    d = np.asarray(differences)
    if deviations <= 0 or len(d) < JUMP_MIN_PAIRS:
        return np.array([], dtype=int)
    median = float(np.median(d))
    spread = 1.4826 * float(np.median(np.abs(d - median)))
    jump = (d > median + deviations * spread) & (d > JUMP_RATIO * median) & (d > median + JUMP_MIN_LEVELS)
    return np.flatnonzero(jump)


@dataclass(frozen=True)
class ShotRules:
    """The ``data`` settings that decide what of a clip is trained on."""

    num_frames: int
    damaged_run: int = 4
    damaged_jump: float = 10.0
    shots: str = "split"
    train_fps: float | None = None
    cut_threshold: float = CUT_THRESHOLD
    min_size: int = 16

    @classmethod
    def from_config(cls, data: dict, num_frames: int) -> "ShotRules":
        return cls(num_frames, data["damaged_run"], data["damaged_jump"], data.get("shots", "split"),
                   data.get("train_fps"), data.get("cut_threshold", CUT_THRESHOLD))


@dataclass
class Span:
    """Frames ``start``..``end`` (inclusive, the clip's numbering) and what they are."""

    start: int
    end: int
    #: shot (picture of a shot), blank, fade, flash or damaged
    what: str
    #: The shot (1, 2, ...) the frames belong to; None for blank frames between shots.
    shot: int | None = None
    kept: bool = False
    #: Why the frames were left out ("" when kept).
    reason: str = ""
    #: The clip's frames a kept span is trained on (every frame, or resampled to data.train_fps).
    indices: np.ndarray | None = field(default=None, repr=False)

    @property
    def frames(self) -> int:
        return self.end - self.start + 1

    @property
    def resampled(self) -> bool:
        """Trained on at another frame rate than the clip's (data.train_fps)."""
        return self.indices is not None and not np.array_equal(self.indices, np.arange(self.start, self.end + 1))

    @property
    def label(self) -> str:
        return f"{self.start}" if self.start == self.end else f"{self.start}-{self.end}"


@dataclass
class ClipShots:
    """A clip's spans, and why it is refused (empty ``problems``: it is not)."""

    path: Path
    width: int
    height: int
    fps: float
    frames: int
    shots: int
    spans: list[Span]
    problems: list[str]
    decoder_messages: list[str]

    @property
    def kept(self) -> list[Span]:
        return [span for span in self.spans if span.kept]

    def summary(self) -> str:
        """One line: the clip's shots and what became of each span."""
        parts = [f"{s.label} {s.what}" + (" kept" if s.kept else f" left out ({s.reason})") for s in self.spans]
        return f"{self.shots} shot(s); " + "; ".join(parts)


def resampled_indices(start: int, end: int, fps: float, train_fps: float | None) -> np.ndarray:
    """The frames of ``start``..``end`` shown at ``train_fps``: every frame when it is None or the
    clip's own rate, else the frame on screen at each tick of the new rate (frames repeat when
    it is higher, are skipped when lower)."""
    if not train_fps or not fps > 0 or abs(fps - train_fps) < 1e-3:  # a rate the container does not state: as is
        return np.arange(start, end + 1)
    count = int(np.floor((end - start + 1) * train_fps / fps + 1e-9))
    return start + np.floor(np.arange(count) * fps / train_fps + 1e-9).astype(int)


def _runs(labels: np.ndarray, lo: int, hi: int) -> list[tuple[int, int, str]]:
    """Maximal runs (start, end inclusive, label) of one label in labels[lo:hi], in the clip's
    numbering."""
    runs, start = [], lo
    for i in range(lo + 1, hi + 1):
        if i == hi or labels[i] != labels[start]:
            runs.append((start, i - 1, labels[start]))
            start = i
    return runs


def _thumb_change(scan: ClipScan, i: int, j: int) -> float:
    return float(np.abs(scan.thumbs[i].astype(np.float32) - scan.thumbs[j]).mean())


def _matching(scan: ClipScan, before: int, after: int) -> bool:
    """Frames ``before`` and ``after`` (a few apart) show the same shot, and the frames between
    them do not: the two differ at most twice as much as the shot's frames usually do over that
    many steps (measured beside them, on the thumbnails; plus JUMP_MIN_LEVELS), and less than
    3/4 as much as ``before`` and any frame between them."""
    near = [k for k in (*range(max(1, before - 8), before + 1), *range(after + 1, min(scan.frames, after + 9)))]
    typical = float(np.median([_thumb_change(scan, k, k - 1) for k in near])) if near else 0.0
    change = _thumb_change(scan, before, after)
    between = min(_thumb_change(scan, before, t) for t in range(before + 1, after))
    return change <= 2 * (after - before) * typical + JUMP_MIN_LEVELS and change < 0.75 * between


def _is_flash(scan: ClipScan, frame: int, reference: int) -> bool:
    """The change from ``reference`` to ``frame`` is one of the whole frame's brightness: its
    mean is most of its mean absolute value (one sign), and its median absolute value is most
    of its mean too (spread over the frame, where damage changes some blocks a lot)."""
    grey = scan.thumbs[frame].astype(np.float32).mean(-1) - scan.thumbs[reference].astype(np.float32).mean(-1)
    size = np.abs(grey).mean()
    return bool(abs(grey.mean()) >= FLASH_SHARE * size and np.median(np.abs(grey)) >= FLASH_SHARE * size)


def find_transients(scan: ClipScan) -> list[tuple[int, int, str]]:
    """(first, last, "flash" | "damaged") of every transient: 1..TRANSIENT_FRAMES frames that
    change suddenly and back, between two frames that match."""
    jumps = sudden_changes(scan.differences, TRANSIENT_DEVIATIONS).tolist()
    found, used = [], set()
    for a in jumps:
        if a in used:
            continue
        for b in (b for b in jumps if a < b <= a + TRANSIENT_FRAMES and b + 1 < scan.frames):
            if _matching(scan, a, b + 1):
                flash = all(_is_flash(scan, t, a) for t in range(a + 1, b + 1))
                found.append((a + 1, b, "flash" if flash else "damaged"))
                used |= set(range(a, b + 1))
                break
    return found


def _trim_fades(scan: ClipScan, labels: np.ndarray, start: int, end: int) -> None:
    """Label as fade the frames of a picture run ``start``..``end`` that lie next to blank frames
    (or a fade) and are still off the run's own brightness."""
    b = scan.brightness

    def off(frame, reference):
        return abs(b[frame] - reference) > FADE_TOLERANCE * reference + 2.0

    if start > 0 and labels[start - 1] in ("blank", "fade"):
        reference = float(np.median(b[start:min(end + 1, start + FADE_REFERENCE)]))
        while start <= end and off(start, reference):
            labels[start] = "fade"
            start += 1
    if end + 1 < scan.frames and labels[end + 1] in ("blank", "fade") and start <= end:
        reference = float(np.median(b[max(start, end + 1 - FADE_REFERENCE):end + 1]))
        while end >= start and off(end, reference):
            labels[end] = "fade"
            end -= 1


def _damage_in(scan: ClipScan, start: int, end: int, rules: ShotRules) -> list[str]:
    """What in a shot's picture frames ``start``..``end`` says the encode is damaged."""
    found = []
    repeated, first = longest_run(scan.copies[start + 1:end + 1])
    if rules.damaged_run and repeated >= rules.damaged_run:
        found.append(f"damaged, {repeated} consecutive repeated frames from frame {start + 1 + first} "
                     f"(data.damaged_run = {rules.damaged_run})")
    pairs = scan.differences[start:end]
    jumps = sudden_changes(pairs, rules.damaged_jump) + start
    if len(jumps):
        named = ", ".join(f"{i}->{i + 1} ({scan.differences[i]:.1f})" for i in jumps[:10])
        found.append(f"damaged encode, sudden changes between frames {named} where the shot's median change "
                     f"is {np.median(pairs):.1f} (data.damaged_jump = {rules.damaged_jump})")
    return found


_REASONS = {
    "blank": "blank or black frames",
    "fade": "a fade from or to blank frames",
    "flash": "a flash: the whole frame brightens or darkens and comes back, the same shot either side",
    "damaged": "a burst of damage: a local change that comes back, the same shot either side",
}


def find_shots(path: str | Path, scan: ClipScan, rules: ShotRules) -> ClipShots:
    """The spans of a scanned clip, what is kept for training, and why it is refused, if it is."""
    n = scan.frames
    labels = np.full(n, "shot", dtype=object)
    transients = find_transients(scan)
    for first, last, kind in transients:
        labels[first:last + 1] = kind
    labels[(labels == "shot") & scan.blank] = "blank"
    # a transient's edges are no cuts: the same shot goes on after it
    cuts = [c for c in scan.cuts if not any(first <= c <= last + 1 for first, last, _ in transients)]
    bounds = [0, *cuts, n]
    segments = [(s, e - 1) for s, e in zip(bounds, bounds[1:])]
    for s, e in segments:
        for start, end, what in _runs(labels, s, e + 1):
            if what == "shot":
                _trim_fades(scan, labels, start, end)

    spans, problems, shot = [], [], 0
    for s, e in segments:
        runs = _runs(labels, s, e + 1)
        pictures = any(what == "shot" for _, _, what in runs)
        shot += pictures
        for start, end, what in runs:
            span = Span(start, end, what, shot if pictures else None)
            if what != "shot":
                span.reason = _REASONS[what] + (" (lead-in)" if start == 0 else " (lead-out)" if end == n - 1 else "")
                if what == "damaged" and rules.damaged_jump:
                    problems.append(f"damaged encode, a burst at frames {span.label} that changes part of the "
                                    f"frame and comes back (data.damaged_jump = {rules.damaged_jump})")
            else:
                problems += _damage_in(scan, start, end, rules)
                span.indices = resampled_indices(start, end, scan.fps, rules.train_fps)
                span.kept = len(span.indices) >= rules.num_frames
                if not span.kept:
                    at = f" at data.train_fps = {rules.train_fps:g}" if len(span.indices) != span.frames else ""
                    span.reason = (f"{len(span.indices)} frames{at}, fewer than the {rules.num_frames} of a training "
                                   f"window (video.num_frames)")
            spans.append(span)

    if min(scan.height, scan.width) < rules.min_size:
        problems.append(f"{scan.width}x{scan.height} pixels, at least {rules.min_size} per side needed")
    if rules.shots == "reject" and shot > 1:
        problems.append(f"{shot} shots (cuts before frames {', '.join(map(str, cuts))}); data.shots = reject "
                        f"takes single-shot clips only (split or longest train on each or the longest shot)")
    if rules.shots == "longest":
        kept = [span for span in spans if span.kept]
        for span in kept:
            if span is not max(kept, key=lambda s: len(s.indices)):
                span.kept, span.reason = False, "not the clip's longest shot (data.shots = longest)"
    return ClipShots(Path(path), scan.width, scan.height, scan.fps, n, shot, spans, problems, scan.decoder_messages)
