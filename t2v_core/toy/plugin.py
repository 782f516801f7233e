"""The toy world plugged into the core (entry point ``t2v_core.plugins: toy``): its data source,
its model source, its ground-truth motion metrics and its config checks. The core knows the
toy world only through what this module registers."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..config import register_config_check
from ..data.sources import CAPTIONS_FILE, GeneratedData, register_data_source
from ..masks import GROUND_TRUTH_DIR, save_masks
from ..metrics.registry import Evaluator, Metric, register_evaluator, register_metric
from ..models.layout import MARKER_FILE
from ..models.prepare import ModelSource, register_model_source
from ..video_io import write_mp4, write_png
from . import toy_model_dir
from .motion_metric import score_motion
from .world import caption, first_frame, motion_clips, parse_caption, toy_motion

NAME = "toy"


# --- Data: the world's clips with ground-truth masks and captions, first frames from the prompt.

def write_toy_clips(out_dir: Path, motion: str, seed: int, count: int, num_frames: int, size: int,
                    fps: int) -> None:
    """``count`` toy clips of ``motion`` as mp4, their ground-truth masks in ``ground_truth/``
    (for checking the SAM masks, never used in their place) and ``captions.csv``."""
    (out_dir / GROUND_TRUTH_DIR).mkdir(parents=True, exist_ok=True)
    rows = ["clip,caption"]
    for index, (subject, frames, masks) in enumerate(motion_clips(motion, count, num_frames, size, seed)):
        write_mp4(out_dir / f"clip_{index:03d}.mp4", frames, fps=fps)
        save_masks(out_dir / GROUND_TRUTH_DIR / f"clip_{index:03d}.npz", masks)
        rows.append(f"clip_{index:03d},{caption(subject, motion)}")
    (out_dir / CAPTIONS_FILE).write_text("\n".join(rows) + "\n")


def _write_clips(out_dir, data, motion, fps):
    size = data["clip_size"][0]
    write_toy_clips(Path(out_dir), toy_motion(motion["name"]), data["seed"], data["clips_per_motion"],
                    data["clip_frames"], size, fps)


def _write_first_frame(out_path, data, motion, prompt, height, width):
    write_png(out_path, first_frame(prompt, height, data["seed"]))


# --- Models: the ones trained on the world (make toy-models), shipped in the package.

#: The model kinds that the toy world trains (t2v_core/toy/train.py) and ships; it has none of
#: the others (VBench's DINO, RAFT, aesthetic head).
TOY_MODEL_KINDS = ("base", "sam", "clip", "motion_adapter")


def toy_kind_dir(kind: str, toy_dir=None) -> Path:
    """The folder of the toy world's trained ``kind`` model; a kind it does not train is named."""
    if kind not in TOY_MODEL_KINDS:
        raise ValueError(f"model kind {kind!r}: models.source {NAME} has no such model (the toy world trains "
                         f"{', '.join(TOY_MODEL_KINDS)}); leave out the methods and evaluation.metrics that load "
                         f"it, or choose another models.source")
    return toy_model_dir(kind, toy_dir)


def copy_toy_model(kind: str, out_dir: Path, toy_dir=None) -> None:
    """The toy world's trained ``kind`` model (shipped in the package, or from ``toy_dir``)."""
    source = toy_kind_dir(kind, toy_dir)
    if not (source / MARKER_FILE).exists():
        raise FileNotFoundError(f"{source}: no trained toy {kind} model ({MARKER_FILE} missing); "
                                f"train them with `make toy-models`")
    shutil.copytree(source, out_dir, dirs_exist_ok=True)


# --- Metrics: does the subject, tracked by its colour, do the prompt's motion?

def motion_features(prompt: str, videos: dict, model_dirs=None, device="cpu", batch_size=None) -> dict:
    """:func:`score_motion` of every video (seed -> uint8 frames) for the prompt's subject and motion."""
    subject, motion = parse_caption(prompt)
    if motion is None:
        raise ValueError(f"prompt {prompt!r}: names none of the toy world's motions, so its motion cannot be scored")
    return {seed: score_motion(frames, subject.colour, motion) for seed, frames in sorted(videos.items())}


# --- Config: square frames, the world's motions, prompts that name its subjects.

def toy_world_problems(config: dict) -> list[str]:
    """The toy world draws square frames of its own motions, and reads its prompts."""
    if config["data"]["source"] != NAME:
        return []
    problems = []
    height, width = config["data"]["clip_size"]
    if height != width:
        problems.append(f"  data.clip_size: the toy world's clips are square, got {height}x{width}")
    if config["video"]["height"] != config["video"]["width"]:
        problems.append(f"  video: the toy world's frames are square, got "
                        f"{config['video']['height']}x{config['video']['width']}")
    for motion in config["motions"]:
        try:
            toy_motion(motion["name"])
        except ValueError as error:
            problems.append(f"  motions.{motion['name']}: {error}")
        for prompt in motion["prompts"]:
            try:
                parse_caption(prompt)
            except ValueError as error:
                problems.append(f"  motions.{motion['name']}.prompts: {error}")
    return problems


register_data_source(GeneratedData(
    NAME, _write_clips, _write_first_frame,
    description="Clips, first frames and prompts are the toy world's (t2v_core/toy/world.py).",
))
register_model_source(ModelSource(
    NAME,
    prepare=lambda kind, work, models_config: copy_toy_model(kind, work, models_config.get("toy_dir")),
    settings=lambda kind, models_config: {"source": NAME, "toy_dir": models_config["toy_dir"]},
    input_folder=lambda kind, models_config: toy_kind_dir(kind, models_config["toy_dir"]),
    describe=lambda models_config, kinds: [
        "Models: the toy world's text-to-image model, CLIP and SAM, trained by this project (``make toy-models``; "
        "t2v_core/toy/models)" + (", and its motion adapter (AnimateDiff's motion modules, trained on the toy "
                                  "base with clips of motions the demo does not ask for: moves left, moves down, "
                                  "shrinks)" if "motion_adapter" in kinds else "") + "."],
))
register_evaluator(Evaluator(
    "toy_motion", motion_features, applies=lambda config: config["data"]["source"] == NAME,
    description="Toy-world ground truth (the subject found by its colour in every frame)",
))
register_metric(Metric(
    "motion_correct", "Motion correct %", "↑", "video", "toy_motion",
    lambda score: 100.0 * score["direction_correct"],
    "Motion correct % is the share of a prompt's videos whose subject, tracked by its colour, does the "
    "prompt's motion",
))
register_metric(Metric(
    "motion_magnitude", "Motion magnitude", "→1", "video", "toy_motion", lambda score: score["magnitude_ratio"],
    "motion magnitude is its change relative to the training clips (1 = as much)",
))
register_metric(Metric(
    "tracked_fraction", "Tracked fraction", "↑", "video", "toy_motion", lambda score: score["tracked_fraction"],
    "the share of frames where the subject's colour was found", tables=(),
))
register_metric(Metric(
    "subject_consistency", "Subject consistency (ground truth)", "↑", "video", "toy_motion",
    lambda score: score["subject_consistency"],
    "subject consistency is 100 x the mean IoU of the subject's masks in consecutive frames (a ground-truth "
    "consistency: CLIP hardly sees where the subject is)",
))
register_config_check(toy_world_problems)
