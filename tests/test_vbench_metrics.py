"""VBench's metrics (t2v_core/metrics/vbench.py) against hand-computed values on synthetic
videos: a still one, a flickering one and a smoothly moving one."""

import numpy as np
import pytest
import torch

from t2v_core.metrics import vbench

SIZE = 32


def still(frames=8):
    video = np.zeros((frames, SIZE, SIZE, 3), np.uint8)
    video[:, 8:16, 8:16] = 200
    return video


def flickering(frames=8):
    """Every other frame 40 levels brighter: consecutive frames differ by 40 everywhere."""
    video = np.full((frames, SIZE, SIZE, 3), 50, np.uint8)
    video[1::2] += 40
    return video


def moving(frames=8, step=2):
    """A 8x8 white square moving right by ``step`` pixels a frame on black."""
    video = np.zeros((frames, SIZE, SIZE, 3), np.uint8)
    for f in range(frames):
        video[f, 12:20, 2 + step * f: 10 + step * f] = 255
    return video


def test_temporal_flickering_by_hand():
    assert vbench.temporal_flickering(still()) == 100.0
    assert vbench.temporal_flickering(flickering()) == pytest.approx(100 * (255 - 40) / 255)
    # each step changes 2 columns of 8 rows at each edge of the square: 2 x 16 pixels x 255 levels
    changed = 2 * 2 * 8 * 255 / (SIZE * SIZE)
    assert vbench.temporal_flickering(moving()) == pytest.approx(100 * (255 - changed) / 255)
    assert vbench.temporal_flickering(flickering()) < vbench.temporal_flickering(moving())


def test_subject_consistency_by_hand():
    assert vbench.subject_consistency(np.tile([1.0, 2.0, 3.0], (5, 1))) == pytest.approx(100.0)
    # frames 1, 2, 3 at 0, 60 and 120 degrees: frame 2 (cos 0.5 to both), frame 3 (0.5 to the
    # previous, max(0, -0.5) = 0 to the first)
    angles = np.radians([0, 60, 120])
    features = np.stack([np.cos(angles), np.sin(angles)], axis=1) * [[1.0], [3.0], [0.5]]  # lengths do not matter
    assert vbench.subject_consistency(features) == pytest.approx(100 * ((0.5 + 0.5) / 2 + (0.5 + 0.0) / 2) / 2)


def test_the_subject_consistency_formula_is_vbenchs_loop():
    """VBench's loop (subject_consistency.py: features normalised, cosine to the previous and to
    the first frame, clipped at 0, averaged over frames 2..F), written out as it is there."""
    features = torch.randn(9, 16, generator=torch.Generator().manual_seed(0))
    video_sim, first_image_features, former_image_features = 0.0, None, None
    for i in range(len(features)):
        image_features = torch.nn.functional.normalize(features[i:i + 1], dim=-1, p=2)
        if i == 0:
            first_image_features = image_features
        else:
            sim_pre = max(0.0, torch.nn.functional.cosine_similarity(former_image_features, image_features).item())
            sim_fir = max(0.0, torch.nn.functional.cosine_similarity(first_image_features, image_features).item())
            video_sim += (sim_pre + sim_fir) / 2
        former_image_features = image_features
    expected = video_sim / (len(features) - 1)
    assert vbench.subject_consistency(features.numpy()) == pytest.approx(100 * expected, rel=1e-6)


def test_aesthetic_quality_by_hand():
    assert vbench.aesthetic_quality(np.array([5.0, 6.0, 7.0])) == pytest.approx(60.0)


def test_dino_input_is_vbenchs_transform():
    """VBench's load_video gives float32 tensors of 0..255 (torch.Tensor of the decoded frames),
    so its dino_transform resizes floats: nothing rounded to uint8 before the scaling."""
    frames = np.random.default_rng(0).integers(0, 256, (2, 32, 48, 3), dtype=np.uint8)
    x = vbench.dino_input(frames)
    assert x.shape == (2, 3, 224, 336)  # the shorter side to 224, the aspect kept
    from torchvision.transforms.functional import resize
    resized = resize(torch.from_numpy(frames).permute(0, 3, 1, 2).float(), 224, antialias=False)
    assert not torch.equal(resized, resized.round())  # the bilinear resize of floats is not whole numbers
    expected = (resized / 255 - torch.tensor([0.485, 0.456, 0.406])[:, None, None]) / \
        torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    torch.testing.assert_close(x, expected, rtol=1e-6, atol=1e-6)
    rounded = resize(torch.from_numpy(frames).permute(0, 3, 1, 2), 224, antialias=False).float() / 255
    assert (x - (rounded - 0.45) / 0.225).abs().max() > 1e-3  # what a uint8 resize would have given differs


def test_clip_input_is_vbenchs_transform():
    """VBench's clip_transform: bicubic, no antialiasing, on floats (values beyond 0..255 kept),
    the centre cut, OpenAI's mean and std; not open_clip's antialiased PIL preprocessing."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.functional import resize

    frames = np.random.default_rng(1).integers(0, 256, (2, 40, 64, 3), dtype=np.uint8)
    x = vbench.clip_input(frames, 32)
    resized = resize(torch.from_numpy(frames).permute(0, 3, 1, 2).float(), 32,
                     interpolation=InterpolationMode.BICUBIC, antialias=False)
    assert resized.shape[-2:] == (32, 51) and (resized.min() < 0 or resized.max() > 255)  # overshoot kept
    left = int(round((51 - 32) / 2.0))
    mean = torch.tensor(vbench.OPENAI_CLIP_MEAN)[:, None, None]
    std = torch.tensor(vbench.OPENAI_CLIP_STD)[:, None, None]
    expected = (resized[..., :, left:left + 32] / 255 - mean) / std
    torch.testing.assert_close(x, expected, rtol=1e-6, atol=1e-6)


def test_metric_order_on_the_three_videos_through_the_registry():
    """The registered metrics (as the evaluation calls them) rank the three videos as they should."""
    from t2v_core.metrics.evaluate import score_prompt_videos
    from t2v_core.metrics.registry import get_evaluator

    videos = {0: still(), 1: flickering(), 2: moving()}
    features = get_evaluator("frames").features("a prompt", videos, {})
    table = score_prompt_videos("frames", features, ["frame_steadiness"]).set_index("seed")
    assert table.loc[0, "frame_steadiness"] == 100.0
    assert table.loc[1, "frame_steadiness"] < table.loc[2, "frame_steadiness"] < 100.0
    assert list(score_prompt_videos("frames", features, []).columns) == ["seed"]  # switched off


# --- The evaluators, on the tiny random-weight models of the real classes.

def test_subject_consistency_of_a_still_video_is_100_with_any_features(tiny_model_dir):
    from t2v_core.metrics.registry import get_evaluator, get_metric

    videos = {0: still(), 1: flickering(), 2: moving()}
    features = vbench.dino_features("a prompt", videos, {"dino": tiny_model_dir / "dino"})
    assert features[0].shape == (8, 32)
    scores = {seed: get_metric("subject_consistency_dino").compute(f) for seed, f in features.items()}
    assert scores[0] == pytest.approx(100.0)
    assert scores[1] < 100.0 and scores[2] < 100.0
    tokens = get_evaluator("clip_patch_tokens").features("a prompt", videos, {"clip": tiny_model_dir / "clip"})
    assert get_metric("subject_consistency_clip").compute(tokens[0]) == pytest.approx(100.0)
    assert get_metric("subject_consistency_clip").compute(tokens[2]) < 100.0


def test_dino_reads_paper_sized_frames_as_the_patches_that_fit(tiny_model_dir):
    """320x512 frames (the paper's) resize to 224x358, not a multiple of the patch: VBench's
    DINO (a stride-16 patch convolution) reads the 224x352 top-left crop of them, nothing padded.
    By hand: the transform, the crop to whole 8-pixel patches of the tiny DINO, its CLS features."""
    from t2v_core.models.loading import load_dino
    from torchvision.transforms.functional import normalize, resize

    frames = np.random.default_rng(5).integers(0, 256, (3, 320, 512, 3), dtype=np.uint8)
    features = vbench.dino_features("a prompt", {0: frames}, {"dino": tiny_model_dir / "dino"})[0]
    resized = resize(torch.from_numpy(frames).permute(0, 3, 1, 2).float(), 224, antialias=False)
    assert resized.shape[-2:] == (224, 358)
    crop = normalize(resized[..., :224, :352] / 255.0, vbench.IMAGENET_MEAN, vbench.IMAGENET_STD)
    model, _ = load_dino(tiny_model_dir / "dino")
    with torch.no_grad():
        expected = model(crop).double().numpy()
    assert features.shape == (3, 32)
    np.testing.assert_allclose(features, expected, rtol=1e-6, atol=1e-6)


def test_clip_patch_tokens_are_the_image_towers_tokens_flattened(tiny_model_dir):
    """By hand: open_clip's ViT asked for its tokens, one row of T x W values per frame; the
    embedder's model is left giving pooled embeddings afterwards."""
    from PIL import Image

    from t2v_core.metrics import clip
    from t2v_core.models.loading import load_clip

    video = moving()
    tokens = clip.load_clip_patch_tokens("a prompt", {0: video}, {"clip": tiny_model_dir / "clip"})[0]
    model, preprocess, _ = load_clip(tiny_model_dir / "clip")
    model.visual.output_tokens = True
    with torch.no_grad():
        _, expected = model.visual(torch.stack([preprocess(Image.fromarray(f)) for f in video]))
    assert expected.shape[1] == (32 // 8) ** 2  # the tiny ViT's 8-pixel patches of its 32-pixel input
    np.testing.assert_allclose(tokens, expected.flatten(1).double().numpy(), rtol=1e-5, atol=1e-6)
    embedder = clip.load_embedder({"clip": tiny_model_dir / "clip"})["clip"]
    assert embedder.model.visual.output_tokens is False
    assert embedder.frames(video).shape == (8, embedder.model.visual.output_dim)


def test_aesthetic_features_are_the_head_on_normalised_clip_embeddings(tiny_model_dir):
    """By hand: the frames through VBench's transform at the tiny CLIP's input size, its image
    embeddings L2-normalised, the head; open_clip's own preprocessing gives other scores."""
    from t2v_core.models.loading import ClipEmbedder, load_aesthetic, load_clip

    dirs = {"clip": tiny_model_dir / "clip", "aesthetic": tiny_model_dir / "aesthetic"}
    video = np.random.default_rng(2).integers(0, 256, (4, 40, 56, 3), dtype=np.uint8)
    scores = vbench.aesthetic_features("a prompt", {0: video}, dirs)[0]
    model, preprocess, tokenizer = load_clip(dirs["clip"])
    head = load_aesthetic(dirs["aesthetic"])
    with torch.no_grad():
        embeddings = model.encode_image(vbench.clip_input(video, 32))
        expected = head(embeddings / embeddings.norm(dim=-1, keepdim=True))[:, 0].numpy()
        pil = head(torch.from_numpy(ClipEmbedder(model, preprocess, tokenizer).frames(video)).float())[:, 0].numpy()
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
    assert np.abs(scores - pil).max() > 1e-4
    assert vbench.aesthetic_quality(scores) == pytest.approx(10 * float(expected.mean()), rel=1e-5)
