"""The toy world's trainings, a handful of steps at a tiny size: the loss on a fixed batch goes
down, the folders load through the real loading code, and the same seed gives the same files."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from t2v_core.models.layout import CLIP_WEIGHTS_FILE, MARKER_FILE, SAM_SAFETENSORS_FILE
from t2v_core.toy.train import main as train_cli
from t2v_core.toy.train_clip import ClipSettings, train_clip
from t2v_core.toy.train_diffusion import TextToImageSettings, train_text_to_image
from t2v_core.toy.train_vae import VaeSettings, train_vae
from t2v_core.toy.train_sam import SamSettings, train_sam

SIZE = 32  # images of 32x32: latents of 8x8
VAE = VaeSettings(image_size=SIZE, num_images=16, steps=8, batch_size=4, learning_rate=3e-3,
                  block_out_channels=(8, 8, 16), log_every=4)
TEXT_TO_IMAGE = TextToImageSettings(
    image_size=SIZE, num_images=16, motion_clips_per_motion=1, motion_clip_frames=2, steps=6, batch_size=4,
    block_out_channels=(16, 32), sample_steps=2, samples_per_prompt=1, log_every=3,
)
CLIP = ClipSettings(num_images=24, motion_clips_per_motion=1, motion_clip_frames=2, steps=6, batch_size=16,
                    held_out_images=8, held_out_clips_per_motion=1, log_every=3)
CLIP_CONFIG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": SIZE, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1},
}
SAM = SamSettings(image_size=SIZE, num_images=8, clips_per_motion=1, clip_frames=2, held_out_clips_per_motion=1,
                  steps=5, batch_size=4, log_every=5)


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy") / "vae"
    return out, train_vae(out, seed=0, settings=VAE)


@pytest.fixture(scope="module")
def base_run(vae_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("toy") / "base"
    return out, train_text_to_image(out, vae_run[0], seed=0, settings=TEXT_TO_IMAGE)


def test_vae_learns_and_is_scaled_to_unit_latents(vae_run):
    out, metrics = vae_run
    assert metrics["held_out_l1_after"] < metrics["held_out_l1_before"]
    assert metrics["steps"] == VAE.steps and np.isfinite(metrics["final_loss"])
    config = json.loads((out / "config.json").read_text())
    assert config["scaling_factor"] == pytest.approx(1.0 / metrics["latent_std"])
    assert json.loads((out / MARKER_FILE).read_text())["kind"] == "toy"
    assert (out / "toy_metrics.json").exists() and (out / "loss.csv").exists()


def test_text_to_image_learns_and_loads_as_a_stable_diffusion_folder(base_run):
    from t2v_core.models.loading import load_base_components
    from t2v_core.sampling import encode_prompt

    out, metrics = base_run
    assert metrics["eval_loss_after"] < metrics["eval_loss_before"]
    generation = metrics["generation"]
    assert generation["images"] == 48 and 0.0 <= generation["both_match"] <= 1.0
    assert (out / "samples.png").exists()
    assert json.loads((out / MARKER_FILE).read_text())["kind"] == "toy"
    for part in ("unet", "vae", "text_encoder"):
        assert list((out / part).glob("*.safetensors")), part
    parts = load_base_components(out)
    text = encode_prompt(parts["text_encoder"], parts["tokenizer"], ["a red square on a white background"], "cpu")
    assert text.shape == (1, 77, TEXT_TO_IMAGE.text_width)
    latents = torch.randn(1, 4, SIZE // 4, SIZE // 4)
    with torch.no_grad():
        noise = parts["unet"](latents, torch.tensor([10]), text).sample
        image = parts["vae"].decode(latents / parts["vae"].config.scaling_factor).sample
    assert noise.shape == latents.shape
    assert image.shape == (1, 3, SIZE, SIZE)


def test_clip_learns_and_loads_for_the_metrics(tmp_path):
    import open_clip

    from t2v_core.models.loading import ClipEmbedder, load_clip

    metrics = train_clip(tmp_path / "clip", seed=0, settings=CLIP, clip_config=CLIP_CONFIG)
    assert metrics["eval_loss_after"] < metrics["eval_loss_before"]
    assert set(metrics["zero_shot_held_out"]) >= {"colour_accuracy", "shape_accuracy", "background_accuracy"}
    model, preprocess, tokenizer = load_clip(tmp_path / "clip")
    prompt = ["a red circle moves right on a black background"]
    # The metrics' tokenizer is the one the training used.
    assert torch.equal(tokenizer(prompt), open_clip.tokenize(prompt))
    embedder = ClipEmbedder(model, preprocess, tokenizer)
    frames = np.zeros((3, 64, 64, 3), np.uint8)
    assert embedder.frames(frames).shape == (3, CLIP_CONFIG["embed_dim"])
    assert preprocess(Image.fromarray(frames[0])).shape == (3, SIZE, SIZE)


def test_sam_learns_and_segments_through_the_predictor(tmp_path):
    from segment_anything import SamPredictor

    from t2v_core.models.loading import load_sam

    metrics = train_sam(tmp_path / "sam", seed=0, settings=SAM)
    assert metrics["eval_loss_after"] < metrics["eval_loss_before"]
    assert 0.0 <= metrics["held_out_box_prompts"]["mean_iou_best_proposal"] <= 1.0
    predictor = SamPredictor(load_sam(tmp_path / "sam"))
    predictor.set_image(np.zeros((SIZE, SIZE, 3), np.uint8))
    masks, scores, _ = predictor.predict(box=np.array([4, 4, 20, 20]), multimask_output=True)
    assert masks.shape == (3, SIZE, SIZE) and scores.shape == (3,)


def test_same_seed_same_files_other_seed_other_files(vae_run, tmp_path):
    weights = "diffusion_pytorch_model.safetensors"
    train_vae(tmp_path / "again", seed=0, settings=VAE)
    train_vae(tmp_path / "other", seed=1, settings=VAE)
    assert sha256(tmp_path / "again" / weights) == sha256(vae_run[0] / weights)
    assert sha256(tmp_path / "other" / weights) != sha256(vae_run[0] / weights)
    for run in ("a", "b"):
        train_clip(tmp_path / f"clip_{run}", seed=0, settings=CLIP, clip_config=CLIP_CONFIG)
        train_sam(tmp_path / f"sam_{run}", seed=0, settings=SAM)
    assert sha256(tmp_path / "clip_a" / CLIP_WEIGHTS_FILE) == sha256(tmp_path / "clip_b" / CLIP_WEIGHTS_FILE)
    sam_a, sam_b = (load_file(tmp_path / f"sam_{r}" / SAM_SAFETENSORS_FILE) for r in "ab")
    assert all(torch.equal(sam_a[k], sam_b[k]) for k in sam_a)


def test_text_to_image_is_deterministic(base_run, vae_run, tmp_path):
    settings = TextToImageSettings(**{**TEXT_TO_IMAGE.__dict__, "samples_per_prompt": 0})
    train_text_to_image(tmp_path / "a", vae_run[0], seed=0, settings=settings)
    weights = "unet/diffusion_pytorch_model.safetensors"
    assert sha256(tmp_path / "a" / weights) == sha256(base_run[0] / weights)
    assert sha256(tmp_path / "a" / "text_encoder" / "model.safetensors") == \
        sha256(base_run[0] / "text_encoder" / "model.safetensors")


def test_cli_rejects_unknown_models(tmp_path):
    with pytest.raises(ValueError, match="unknown models"):
        train_cli(["--out", str(tmp_path), "--only", "vae,bogus"])


def test_motion_adapter_learns_only_the_pretraining_motions_and_loads_into_animatediff(base_run, tmp_path):
    from diffusers import AnimateDiffPipeline, MotionAdapter

    from t2v_core.models.loading import load_base_components
    from t2v_core.toy.train_motion import MotionAdapterSettings, pretraining_clips, train_motion_adapter
    from t2v_core.toy.world import MOTIONS

    settings = MotionAdapterSettings(image_size=SIZE, clip_frames=4, clips_per_motion=2, held_out_per_motion=1,
                                     steps=6, batch_size=2, learning_rate=3e-3, log_every=3)
    _, captions = pretraining_clips(settings, 0, 2)
    # never a motion the demo asks for
    assert len(captions) == 6 and not any(motion in caption for caption in captions for motion in MOTIONS)
    metrics = train_motion_adapter(tmp_path / "a", base_run[0], seed=0, settings=settings)
    assert metrics["held_out_loss_after"] < metrics["held_out_loss_before"]
    assert metrics["pretraining_motions"] == ["moves left", "moves down", "shrinks"]
    weights = "diffusion_pytorch_model.safetensors"
    train_motion_adapter(tmp_path / "b", base_run[0], seed=0, settings=settings)
    assert sha256(tmp_path / "a" / weights) == sha256(tmp_path / "b" / weights)
    adapter = MotionAdapter.from_pretrained(tmp_path / "a")
    pipe = AnimateDiffPipeline(**load_base_components(base_run[0]), motion_adapter=adapter)
    pipe.set_progress_bar_config(disable=True)
    frames = pipe("a red square moves right on a black background", num_frames=4, height=SIZE, width=SIZE,
                  num_inference_steps=2, generator=torch.Generator().manual_seed(0), output_type="np").frames[0]
    assert frames.shape == (4, SIZE, SIZE, 3) and np.isfinite(frames).all()
