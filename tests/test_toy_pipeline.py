"""The toy world in the workflow: its data stage, the motion metric in evaluation and
aggregation, per-clip captions in fine-tuning, and the shipped trained models."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from t2v_core.aggregate import comparison_table, latex_table, markdown_table, motions_markdown, per_prompt, summarise
from t2v_core.config import ConfigError, load_config, validate_config
from t2v_core.data.sources import CAPTIONS_FILE, clip_captions, prepare_first_frame, prepare_motion_clips
from t2v_core.data.validation import DataError
from t2v_core.masks import GROUND_TRUTH_DIR, load_masks
from t2v_core.jobs.finetune import finetune_motion
from t2v_core.metrics.evaluate import evaluate_prompt
from t2v_core.toy import SHIPPED_MODELS
from t2v_core.toy.motion_metric import subject_masks
from t2v_core.toy.world import Subject, first_frame, motion_clip, parse_caption
from t2v_core.video_io import read_image, read_video

from conftest import REPO

TOY_DATA = {"source": "toy", "seed": 0, "clips_per_motion": 3, "clip_frames": 6, "clip_size": [32, 32],
            "damaged_run": 4, "damaged_jump": 10.0}
MOTION = {"name": "moves_right", "subject": "shape", "source": {}}


def test_captions_are_parsed_in_any_order_and_bad_ones_quoted():
    assert parse_caption("a red square moves right on a black background") == (Subject("square", "red", "black"),
                                                                               "moves right")
    assert parse_caption("On white, a yellow star spins") == (Subject("star", "yellow", "white"), "spins")
    assert parse_caption("a blue circle on a gray background")[1] is None
    with pytest.raises(ValueError, match=r"'a square moves up'.*colours"):
        parse_caption("a square moves up")
    with pytest.raises(ValueError, match="shapes"):
        parse_caption("a red square and a blue circle on a black background")


def test_toy_clips_come_with_ground_truth_masks_and_captions(tmp_path):
    clips = prepare_motion_clips(TOY_DATA, MOTION, tmp_path / "train", num_frames=4, fps=4)
    assert [c.name for c in clips] == ["clip_000.mp4", "clip_001.mp4", "clip_002.mp4"]
    captions = clip_captions(tmp_path / "train", clips)
    assert len(captions) == 3 and all(c.endswith("background") and "moves right" in c for c in captions)
    for clip, text in zip(clips, captions):
        frames, truth = read_video(clip), load_masks(tmp_path / "train" / GROUND_TRUTH_DIR / f"{clip.stem}.npz")
        assert frames.shape == (6, 32, 32, 3) and truth.shape == (6, 32, 32)
        subject, _ = parse_caption(text)
        # the mask is where the caption's colour is (after mp4 compression's chroma blur)
        assert subject_masks(frames, subject.colour)[truth].mean() > 0.8
        assert subject_masks(frames, subject.colour)[~truth].mean() < 0.02
        xs = [np.nonzero(m)[1].mean() for m in truth]
        assert xs[-1] - xs[0] > 0.3 * 32  # it moves right


def test_sam_masks_of_toy_clips_are_scored_against_the_ground_truth(tiny_model_dir, tmp_path):
    from t2v_core.masks import extract_motion_masks, mask_iou

    clips = prepare_motion_clips(TOY_DATA, MOTION, tmp_path / "train", num_frames=4, fps=4)[:2]
    config = validate_config({"motions": [{"name": "m", "prompts": ["x"]}]})["masks"]
    table = extract_motion_masks(tiny_model_dir / "sam", clips, tmp_path / "masks", config)
    for clip, iou in zip(clips, table["ground_truth_iou"]):
        truth = load_masks(tmp_path / "train" / GROUND_TRUTH_DIR / f"{clip.stem}.npz")
        masks = load_masks(tmp_path / "masks" / f"{clip.stem}.npz")
        assert iou == pytest.approx(mask_iou(masks, truth).mean()) and 0.0 <= iou <= 1.0
        assert not np.array_equal(masks, truth)  # SAM's masks, never the ground truth itself


def test_toy_first_frame_is_the_prompts_subject_at_its_motions_start(tmp_path):
    prompt = "a red square moves right on a black background"
    prepare_first_frame(TOY_DATA, MOTION, prompt, tmp_path / "first.png", 32, 32)
    image = read_image(tmp_path / "first.png")
    expected = first_frame(prompt, 32, 0)
    assert np.array_equal(image, expected)
    red = (np.abs(image.astype(int) - (220, 40, 40)).sum(-1) < 30)
    assert red.sum() > 20 and np.nonzero(red)[1].mean() < 16  # it starts on the left half
    clip, _ = motion_clip("moves right", Subject("square", "red", "black"), 4, 32, 0)
    assert np.array_equal(expected, clip[0])


def test_clip_captions_missing_file_none_missing_clip_named(tmp_path):
    clips = [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    assert clip_captions(tmp_path, clips) is None
    (tmp_path / CAPTIONS_FILE).write_text("clip,caption\na,a red circle\n")
    with pytest.raises(DataError, match=r"captions.csv: no caption for clips b"):
        clip_captions(tmp_path, clips)


def test_toy_config_rejects_unknown_motions_unparsable_prompts_and_non_square_frames():
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config["motions"][0]["name"] = "horse_run"
    config["motions"][1]["prompts"].append("a purple square moves up on a black background")
    config["video"]["width"] = 96
    with pytest.raises(ConfigError) as error:
        validate_config(config)
    message = str(error.value)
    assert "motions.horse_run: not a toy world motion" in message
    assert "'a purple square moves up on a black background'" in message
    assert "video: the toy world's frames are square, got 64x96" in message


def test_demo_config_is_the_toy_world_with_every_motion():
    demo = load_config(REPO / "config" / "demo.yaml")
    assert demo["models"]["source"] == "toy" and demo["data"]["source"] == "toy"
    assert sorted(m["name"] for m in demo["motions"]) == ["grows", "moves_right", "moves_up", "spins"]
    for motion in demo["motions"]:
        assert all(parse_caption(p)[1] == motion["name"].replace("_", " ") for p in motion["prompts"])


def motion_scores(prompt, videos):
    """The toy world's per-video motion metrics, through the registry as the evaluate job runs them."""
    return evaluate_prompt(["toy_motion"], prompt, videos, {})


def test_motion_scores_reward_the_prompts_motion_only():
    subject = Subject("triangle", "blue", "white")
    right, _ = motion_clip("moves right", subject, 8, 64, 0)
    up, _ = motion_clip("moves up", subject, 8, 64, 0)
    prompt = "a blue triangle moves right on a white background"
    table = motion_scores(prompt, {0: right, 1: right[::-1], 2: up, 3: np.repeat(right[:1], 8, 0)})
    assert table["motion_correct"].tolist() == [100.0, 0.0, 0.0, 0.0]
    assert table["motion_magnitude"][0] == pytest.approx(1.0, abs=0.25)
    assert table["motion_magnitude"][1] < 0  # moved left
    assert table["tracked_fraction"].tolist() == [1.0] * 4
    # subject consistency: a still subject overlaps itself fully; a moving one less; one that
    # jumps between its start and its end (a per-frame model's failure) hardly
    jumping = right.copy()
    jumping[1::2] = right[-1]
    jumps = motion_scores(prompt, {0: jumping})["subject_consistency"][0]
    assert table["subject_consistency"][3] == 100.0
    assert 30.0 < table["subject_consistency"][0] < 100.0 and jumps < table["subject_consistency"][0] / 2
    with pytest.raises(ValueError, match="names none of the toy world's motions"):
        motion_scores("a blue triangle on a white background", {0: right})


def _videos_with_motion():
    rows = []
    for method, correct in (("lamp", [100, 100, 0, 100]), ("text2video_zero", [0, 0, 0, 100])):
        for p in range(2):
            for seed in (0, 1):
                rows.append({"method": method, "motion": f"m{p}", "prompt_id": f"p{p}", "prompt": f"prompt {p}",
                             "seed": seed, "alignment": 30.0, "consistency": 90.0, "prompt_diversity_prompts": 80.0,
                             "motion_correct": float(correct[2 * p + seed]), "motion_magnitude": 0.5 + p,
                             "subject_consistency": 70.0, "tracked_fraction": 1.0})
    return pd.DataFrame(rows)


def test_motion_metric_is_aggregated_over_prompts_beside_the_clip_metrics():
    videos = _videos_with_motion()
    prompts = per_prompt(videos)
    assert prompts.set_index(["method", "prompt_id"])["motion_correct"].to_dict() == {
        ("lamp", "p0"): 100.0, ("lamp", "p1"): 50.0, ("text2video_zero", "p0"): 0.0, ("text2video_zero", "p1"): 50.0}
    table = comparison_table(videos, ["lamp", "text2video_zero"], 200, 0).set_index("method")
    assert table.loc["lamp", "motion_correct"] == 75.0 and table.loc["text2video_zero", "motion_correct"] == 25.0
    assert table.loc["lamp", "motion_magnitude"] == 1.0
    markdown = markdown_table(table.reset_index())
    assert "Motion correct % ↑ [95% CI]" in markdown and "| 75.00 [50.00, 100.00] |" in markdown
    assert r"Motion correct \%" in latex_table(table.reset_index())
    motions = summarise(prompts, ["method", "motion"], 200, 0)
    assert "| m1 | LAMP | 30.00 | 90.00 | 80.00 | 50.00 | 1.50 | 70.00 | 1 |" in motions_markdown(motions, ["lamp"])


def test_clip_metrics_alone_without_the_motion_metric():
    videos = _videos_with_motion().drop(columns=["motion_correct", "motion_magnitude", "subject_consistency",
                                              "tracked_fraction"])
    table = comparison_table(videos, ["lamp"], 50, 0)
    assert "motion_correct" not in table and "Motion" not in markdown_table(table)


def test_finetuning_takes_one_caption_per_clip(base_parts, tmp_path):
    from t2v_core.methods import get_training
    from t2v_core.training import TrainingError

    clips = prepare_motion_clips(TOY_DATA, MOTION, tmp_path / "train", num_frames=4, fps=4)
    captions = clip_captions(tmp_path / "train", clips)
    video = {"num_frames": 4, "height": 32, "width": 32}
    finetune = {"steps": 2, "learning_rate": 1e-3, "checkpoint_every": 10, "seed": 0, "random_flip": False,
                "mixed_precision": "no", "gradient_checkpointing": False, "save_dtype": "fp32",
                "lamp": {"init": "reference"}}
    lamp = get_training("lamp")
    finetune_motion(lamp, base_parts, clips, captions, tmp_path / "adapter", tmp_path / "ckpt", video, finetune)
    assert (tmp_path / "adapter" / "config.json").exists()
    with pytest.raises(TrainingError, match="2 captions for 3 clips"):
        finetune_motion(lamp, base_parts, clips, captions[:2], tmp_path / "again", tmp_path / "ckpt2", video, finetune)


# --- The shipped models: what `make toy-models` trained, loaded by the workflow's own code.

shipped = pytest.mark.skipif(not (SHIPPED_MODELS / "base" / "prepared.json").exists(),
                             reason="no trained toy models in t2v_core/toy/models (make toy-models)")


@shipped
def test_shipped_models_are_the_toy_trainers_output_in_safetensors():
    for kind in ("vae", "base", "clip", "sam"):
        marker = json.loads((SHIPPED_MODELS / kind / "prepared.json").read_text())
        assert marker["kind"] == "toy" and marker["seed"] == 0
        assert (SHIPPED_MODELS / kind / "toy_metrics.json").exists()
    assert not list(SHIPPED_MODELS.rglob("*.pth")) and not list(SHIPPED_MODELS.rglob("*.bin"))
    assert sum(f.stat().st_size for f in SHIPPED_MODELS.rglob("*") if f.is_file()) < 40 * 2**20


@shipped
def test_shipped_text_to_image_model_draws_the_prompts_colour_and_background(tmp_path):
    import torch

    from t2v_core.models.loading import load_base_components
    from t2v_core.models.prepare import prepare_model
    from t2v_core.toy.train_diffusion import image_colours

    prepare_model("base", tmp_path / "base", {"source": "toy", "toy_dir": None})
    parts = load_base_components(tmp_path / "base")
    from diffusers import StableDiffusionPipeline

    pipeline = StableDiffusionPipeline(**parts, safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
    pipeline.set_progress_bar_config(disable=True)
    prompts = ["a red square on a white background", "a blue circle on a black background",
               "a yellow star on a gray background", "a green triangle on a white background"]
    images = pipeline(prompts, num_inference_steps=15, guidance_scale=7.5, output_type="np",
                      generator=torch.Generator().manual_seed(0)).images
    found = [image_colours((image * 255).round().astype(np.uint8)) for image in images]
    assert found == [("red", "white"), ("blue", "black"), ("yellow", "gray"), ("green", "white")]


@shipped
def test_shipped_clip_tells_colours_and_sam_finds_the_subject(tmp_path):
    from t2v_core.masks import SubjectSegmenter, mask_iou
    from t2v_core.models.loading import ClipEmbedder, load_clip
    from t2v_core.models.prepare import prepare_model

    for kind in ("clip", "sam"):
        prepare_model(kind, tmp_path / kind, {"source": "toy", "toy_dir": None})
    embedder = ClipEmbedder(*load_clip(tmp_path / "clip"))
    colours = ["red", "green", "blue", "yellow"]
    texts = np.stack([embedder.text(f"a {c} circle on a black background") for c in colours])
    frames = np.stack([motion_clip("grows", Subject("circle", c, "black"), 2, 64, 0)[0][1] for c in colours])
    assert (embedder.frames(frames) @ texts.T).argmax(1).tolist() == [0, 1, 2, 3]
    frames, truth = motion_clip("moves up", Subject("star", "green", "gray"), 8, 64, 0)
    config = validate_config({"motions": [{"name": "m", "prompts": ["x"]}]})["masks"]
    masks = SubjectSegmenter(tmp_path / "sam", config).segment(frames)
    assert mask_iou(masks, truth).mean() > 0.7


@shipped
def test_toy_clips_patch_tokens_see_a_jumping_subject_that_its_pooled_embedding_hardly_sees():
    """Why the demo's subject consistency reads the toy CLIP's patch tokens: a subject that moves
    smoothly against the same subject drawn at a new place every frame (as per-frame sampling
    does): the tokens rank the smooth one higher, the pooled embedding does not."""
    from t2v_core.metrics import clip, vbench
    from t2v_core.toy.world import Subject, render

    subject = Subject("square", "red", "black")
    smooth = np.stack([render(subject, 64, (16 + 4 * f, 32), 10)[0] for f in range(8)])
    rng = np.random.default_rng(0)
    jumping = np.stack([render(subject, 64, tuple(rng.uniform(14, 50, 2)), 10)[0] for f in range(8)])
    dirs = {"clip": SHIPPED_MODELS / "clip"}
    tokens = clip.load_clip_patch_tokens("p", {0: smooth, 1: jumping}, dirs)
    pooled = clip.load_clip_features("p", {0: smooth, 1: jumping}, dirs)
    by_tokens = [vbench.subject_consistency(tokens[seed]) for seed in (0, 1)]
    by_pooled = [vbench.subject_consistency(pooled[seed].frames) for seed in (0, 1)]
    # (at the time of writing: tokens 92.1 against 88.2; pooled 93.1 against 94.7, the wrong way)
    assert by_tokens[0] - by_tokens[1] > 2.0
    assert by_pooled[0] - by_pooled[1] < by_tokens[0] - by_tokens[1]
