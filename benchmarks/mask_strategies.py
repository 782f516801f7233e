"""Mask strategies on the real clips of ../shared/data/clips: how well each one's SAM prompt
box fits the hand-drawn subject boxes, and the seconds per frame of mask extraction.

    python -m benchmarks.mask_strategies [--out benchmarks/results]

Quality is measured on what does not need trained weights (the prompt box that the motion
cue gives SAM); SAM's and CLIP's own parts need the real checkpoints, which this machine
cannot fetch, so with the tiny random models only their speed is measured.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from t2v_core.masks import box_of, clean_motion, extract_motion_masks, motion_masks
from t2v_core.video_io import read_video, write_mp4

HERE = Path(__file__).resolve().parent
CLIPS = HERE.parent.parent / "shared" / "data" / "clips"
STRIDE = 10  # 16 frames 10 apart: about the span of a LAMP training clip


def box_iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def prompt_box_quality(threshold=0.08, min_area=0.001) -> dict:
    labels = json.loads((HERE / "data" / "subject_boxes.json").read_text())
    rows = {}
    for clip, boxes in labels.items():
        if clip == "description":
            continue
        frames = read_video(CLIPS / clip, range(0, 16 * STRIDE, STRIDE))
        moving = motion_masks(frames, threshold)
        raw, cleaned = [], []
        for index, truth in ((int(k), v) for k, v in boxes.items() if k != "subject"):
            f = index // STRIDE
            raw.append(box_iou(box_of(moving[f], min_area), truth))
            cleaned.append(box_iou(box_of(clean_motion(moving[f]), min_area), truth))
        rows[clip] = {"raw_motion_box_iou": float(np.mean(raw)), "cleaned_motion_box_iou": float(np.mean(cleaned))}
    return rows


def seconds_per_frame(models: Path, size: int, frames: int = 8) -> dict:
    """Mask extraction with the tiny models on ``frames`` frames of vtest.avi at size x size."""
    from PIL import Image

    video = read_video(CLIPS / "vtest.avi", range(0, frames * STRIDE, STRIDE))
    video = np.stack([np.asarray(Image.fromarray(f).resize((size, size))) for f in video])
    out = {}
    with tempfile.TemporaryDirectory() as work:
        clip = Path(work) / "clip.mp4"
        write_mp4(clip, video, fps=4)
        for strategy in ("motion", "clip_subject"):
            config = {"strategy": strategy, "motion_threshold": 0.08, "min_area": 0.001,
                      "points_per_side": 16, "proposal_iou_threshold": 0.0,
                      "proposal_stability_threshold": 0.0, "subject_template": "a photo of a {subject}"}
            start = time.perf_counter()
            extract_motion_masks(models / "sam", [clip], Path(work) / strategy, config,
                                 subject="person", clip_dir=models / "clip")
            out[strategy] = (time.perf_counter() - start) / frames
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    from t2v_core.models.prepare import prepare_model

    with tempfile.TemporaryDirectory() as models:
        models = Path(models)
        for kind in ("sam", "clip"):
            prepare_model(kind, models / kind, {"source": "tiny", "seed": 0})
        speed = {f"{size}x{size}": seconds_per_frame(models, size) for size in (64, 256)}
    result = {"device": f"CPU ({platform.processor() or platform.machine()}), tiny random SAM and CLIP",
              "prompt_box_iou": prompt_box_quality(), "seconds_per_frame": speed}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "mask_strategies.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
