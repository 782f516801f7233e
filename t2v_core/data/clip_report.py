"""A motion's training clips made from its footage: each clip's shots found (:mod:`.shots`), the
kept ones written as clips of their own, and a clip report the user can look at.

A clip kept whole, at its own frame rate, is copied byte for byte (LAMP's single-shot clips
train exactly as before); a shot cut out of a clip, or resampled, is written losslessly (FFV1),
so that its frames are the decoded clip's frames. Beside the training clips:
- ``clip_report.csv``: one row per span of every clip (size, frame rate, frames, shots, what
  the span is, whether it is kept and as which training clip, or why not);
- ``clip_report.md``: the same, per clip, to read;
- ``clip_report.png``: a contact sheet of the kept shots (first, middle and last frame).
"""

from __future__ import annotations

import itertools
import logging
import shutil
from pathlib import Path

import numpy as np

from ..video_io import iter_frames, write_lossless, write_png
from .scan import decoder_output, scan_clip
from .shots import ClipShots, ShotRules, Span, find_shots
from .validation import DataError

log = logging.getLogger(__name__)

REPORT = "clip_report"
#: Height of a contact sheet's frames: enough to see the shot, small for any clip size.
SHEET_HEIGHT = 96
#: Optional per-clip captions of a motion's clips (a generated source may write one); without
#: it the motion's ``train_prompt`` captions every clip, as in LAMP. Carried over to the shots.
CAPTIONS_FILE = "captions.csv"


def training_clip_name(clip: ClipShots, span: Span, train_fps: float | None) -> str:
    """The clip's own name when the span is all of it at its own rate, else
    ``<stem>.f<first>-<last>[.<fps>fps].mkv`` (frames in the clip's numbering)."""
    if span.start == 0 and span.end == clip.frames - 1 and not span.resampled:
        return clip.path.name
    digits = len(str(clip.frames - 1))
    rate = f".{train_fps:g}fps" if span.resampled else ""
    return f"{clip.path.stem}.f{span.start:0{digits}d}-{span.end:0{digits}d}{rate}.mkv"


def analyse_clips(paths: list[Path], rules: ShotRules) -> list[ClipShots]:
    """Every clip's shots; one DataError naming every clip that cannot be used and why (it does
    not decode, is too small, is damaged, or has several shots where ``data.shots`` is reject)."""
    from tqdm.auto import tqdm

    found, problems = [], []
    for path in tqdm(paths, desc="finding shots", unit="clip"):
        try:
            scan = scan_clip(path, rules.cut_threshold)
        except Exception as error:  # decord raises its own DECORDError and RuntimeError
            problems.append(f"{path}: cannot be decoded ({str(error).splitlines()[0]})")
            continue
        clip = find_shots(path, scan, rules)
        if clip.problems:
            said = [f"the decoder reported {len(scan.decoder_messages)} problem(s), e.g. "
                    f"{scan.decoder_messages[0]!r}"] if scan.decoder_messages else []
            problems.append(f"{path}: " + "; ".join(clip.problems + said))
        elif scan.decoder_messages:
            log.warning("%s: the decoder reported %d problem(s) (e.g. %r); nothing in the frames looks damaged, "
                        "so the clip is used", path, len(scan.decoder_messages), scan.decoder_messages[0])
        log.info("%s: %dx%d, %.3f fps, %d frames, %s", path, clip.width, clip.height, clip.fps, clip.frames,
                 clip.summary())
        found.append(clip)
    if problems:
        raise DataError("invalid training clips:\n  " + "\n  ".join(problems))
    return found


def _sheet_frame(frame: np.ndarray) -> np.ndarray:
    import cv2

    height, width = frame.shape[:2]
    size = (max(2, round(width * SHEET_HEIGHT / height)), SHEET_HEIGHT)
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def _span_frames(frames, span: Span, picks: set[int], picked: dict[int, np.ndarray]):
    """The frames of ``span`` from the clip's frame iterator (positioned at its start), as its
    indices ask for them (repeated or skipped when resampled); the ``picks`` kept in ``picked``."""
    counts = np.bincount(span.indices - span.start, minlength=span.frames)
    for index in range(span.start, span.end + 1):
        frame = next(frames)
        if index in picks:
            picked[index] = _sheet_frame(frame)
        yield from itertools.repeat(frame, int(counts[index - span.start]))


def write_kept_spans(clip: ClipShots, out_dir: Path, names: dict[int, str], train_fps: float | None) -> dict:
    """Write a clip's kept spans (the clip itself copied, a shot cut out of it written losslessly)
    in one more sequential decode (a shot is never held in memory whole); returns {span index: its first, middle and last
    frame, small} for the contact sheet."""
    sheets = {}
    with decoder_output():
        frames, position = iter_frames(clip.path), 0
        for i, span in enumerate(clip.spans):
            if not span.kept:
                continue
            for _ in range(span.start - position):
                next(frames)
            picks = [int(span.indices[k]) for k in (0, len(span.indices) // 2, -1)]
            picked: dict[int, np.ndarray] = {}
            stream = _span_frames(frames, span, set(picks), picked)
            if names[i] == clip.path.name:  # all of it, at its own rate: the file as it is
                shutil.copy2(clip.path, out_dir / clip.path.name)
                for _ in stream:
                    pass
            else:
                write_lossless(out_dir / names[i], stream, train_fps if span.resampled else clip.fps or 25.0)
            position = span.end + 1
            sheets[i] = [picked[k] for k in picks]
    return sheets


def _carry_over(source_dir: Path, out_dir: Path, units: list[tuple[ClipShots, Span, str]]) -> None:
    """A source's captions (per clip) and ground-truth masks (per clip and frame), for the
    training clips cut from each clip."""
    import pandas as pd

    from ..masks import GROUND_TRUTH_DIR, load_masks, save_masks

    captions = source_dir / CAPTIONS_FILE
    if captions.exists():
        table = pd.read_csv(captions, dtype=str).set_index("clip")["caption"]
        rows = [(Path(name).stem, table.get(clip.path.stem)) for clip, _, name in units]
        frame = pd.DataFrame(rows, columns=["clip", "caption"])
        frame.to_csv(out_dir / CAPTIONS_FILE, index=False)
    for clip, span, name in units:
        truth = source_dir / GROUND_TRUTH_DIR / f"{clip.path.stem}.npz"
        if truth.exists():
            save_masks(out_dir / GROUND_TRUTH_DIR / f"{Path(name).stem}.npz", load_masks(truth)[span.indices])


def report_rows(clips: list[ClipShots], names: dict[tuple[int, int], str]) -> list[dict]:
    """One row per span of every clip, with the clip's size, rate, frames and shots."""
    rows = []
    for c, clip in enumerate(clips):
        for s, span in enumerate(clip.spans):
            rows.append({"clip": clip.path.name, "width": clip.width, "height": clip.height,
                         "fps": round(clip.fps, 3), "frames": clip.frames, "shots": clip.shots,
                         "start": span.start, "end": span.end, "what": span.what,
                         "shot": "" if span.shot is None else span.shot, "kept": span.kept,
                         "training_clip": names.get((c, s), ""), "reason": span.reason})
    return rows


def report_markdown(motion: str, clips: list[ClipShots], rows: list[dict], rules: ShotRules) -> str:
    rate = f"resampled to {rules.train_fps:g} fps" if rules.train_fps else "each at its own frame rate"
    lines = [f"# Training clips of {motion}", "",
             f"Shots of at least {rules.num_frames} frames are trained on (data.shots = {rules.shots}), "
             f"{rate}; a training window never crosses a shot's boundary.", ""]
    for clip in clips:
        lines += [f"## {clip.path.name}", "",
                  f"{clip.width}x{clip.height}, {f'{clip.fps:.3f} fps' if clip.fps else 'no frame rate stated'}, "
                  f"{clip.frames} frames, {clip.shots} shot(s)", "",
                  "| Frames | What | Shot | Kept as | Why left out |", "|---|---|---|---|---|"]
        lines += [f"| {r['start']}-{r['end']} | {r['what']} | {r['shot'] or '–'} | {r['training_clip'] or '–'} | "
                  f"{r['reason'] or '–'} |" for r in rows if r["clip"] == clip.path.name]
        lines.append("")
    return "\n".join(lines)


def prepare_training_shots(source_dir: Path, clip_paths: list[Path], out_dir: Path, rules: ShotRules,
                           motion: str) -> list[Path]:
    """The training clips of ``motion`` in ``out_dir`` (a folder being built) from its footage
    (``clip_paths``, in ``source_dir`` with their captions and ground truth, if any), with the
    clip report. A motion whose clips leave nothing to train on stops here, with one
    error that names every clip and why."""
    import pandas as pd

    from ..grids import contact_sheet

    clips = analyse_clips(clip_paths, rules)
    names = {(c, s): training_clip_name(clip, span, rules.train_fps)
             for c, clip in enumerate(clips) for s, span in enumerate(clip.spans) if span.kept}
    if not names:
        raise DataError(f"motion {motion}: no clip leaves a shot of at least {rules.num_frames} frames to train on:\n  "
                        + "\n  ".join(f"{clip.path}: {clip.summary()}" for clip in clips))
    if len(set(names.values())) != len(names):
        raise DataError(f"motion {motion}: two clips of one name ({sorted(names.values())})")
    sheets, units = [], []
    for c, clip in enumerate(clips):
        own = {s: name for (k, s), name in names.items() if k == c}
        if not own:
            continue
        picked = write_kept_spans(clip, out_dir, own, rules.train_fps)
        for s, name in own.items():
            span = clip.spans[s]
            units.append((clip, span, name))
            sheets.append((f"{clip.path.name} frames {span.label}", np.stack(picked[s])))
    _carry_over(Path(source_dir), out_dir, units)
    rows = report_rows(clips, names)
    pd.DataFrame(rows).to_csv(out_dir / f"{REPORT}.csv", index=False)
    (out_dir / f"{REPORT}.md").write_text(report_markdown(motion, clips, rows, rules), encoding="utf-8")
    labels, frames = zip(*sheets)
    write_png(out_dir / f"{REPORT}.png", contact_sheet(list(frames), list(labels), 3, ("first", "middle", "last")))
    return [out_dir / name for _, _, name in units]
