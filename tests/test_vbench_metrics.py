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


def test_top_flow_magnitude_and_dynamic_degree_by_hand():
    flow = np.zeros((2, 20, 20))  # 400 pixels: the top 5% are 20 of them
    flow[0, :1, :] = 3.0  # 20 pixels move (3, 4): magnitude 5
    flow[1, :1, :] = 4.0
    flow[0, 1:3, :] = 1.0  # 40 more move by 1
    assert vbench.top_flow_magnitude(flow) == pytest.approx(5.0)
    # 64-pixel frames: threshold 6 x 64 / 256 = 1.5 pixels; 8 frames (7 pairs) need round(2) = 2 pairs
    assert vbench.is_dynamic([5.0, 0.0, 1.6, 0.0, 0.0, 0.0, 0.0], 64, 64)
    assert not vbench.is_dynamic([5.0, 0.0, 1.5, 0.0, 0.0, 0.0, 0.0], 64, 64)
    # 16 frames need 4 pairs; at 4 fps the threshold doubles
    assert not vbench.is_dynamic([2.0] * 3 + [0.0] * 12, 64, 64)
    assert vbench.is_dynamic([2.0] * 4 + [0.0] * 11, 64, 64)
    assert not vbench.is_dynamic([2.0] * 15, 64, 64, fps=4)


def test_static_filter_by_hand():
    """VBench's static filter on a 16-frame 256-pixel video: threshold 3.0 pixels, at most
    round(2 x 16 / 16) = 2 moving consecutive pairs, the first <-> last flows at most 3 x 2 x 2 = 12."""
    still = [0.0] * 15
    assert vbench.is_static(still, [0.0, 0.0], 256, 320)
    assert vbench.is_static([3.1, 3.1] + still[2:], [12.0, 12.0], 256, 320)  # 2 pairs above, loop at the limit
    assert not vbench.is_static([3.1, 3.1, 3.1] + still[3:], [0.0, 0.0], 256, 320)  # a third pair above
    assert vbench.is_static([3.0] * 15, [0.0, 0.0], 256, 320)  # at the threshold is not above it
    assert not vbench.is_static(still, [0.0, 12.01], 256, 320)  # the last frame far from the first
    # the threshold follows the shorter side: 1.5 pixels at 128
    assert not vbench.is_static([1.6] * 3 + still[3:], [0.0, 0.0], 128, 512)
    # 4 frames (3 pairs): round(0.5) = 0 pairs may move, and the loop limit is 0
    assert vbench.is_static([0.0] * 3, [0.0, 0.0], 256, 256)
    assert not vbench.is_static([0.0] * 3, [0.01, 0.0], 256, 256)
    assert not vbench.is_static([3.5, 0.0, 0.0], [0.0, 0.0], 256, 256)


def test_static_filter_reads_the_top_2_percent_of_a_flow():
    flow = np.zeros((2, 10, 10))
    flow[0].flat[:2] = [3.0, 5.0]  # 2 of 100 magnitudes: the top 2% is both
    flow[1].flat[2:5] = 100.0  # the next three would be in a top 5%
    assert vbench.top_flow_magnitude(flow, vbench.STATIC_TOP_FLOW_SHARE) == pytest.approx(100.0)
    flow[1].flat[2:5] = 0.0
    assert vbench.top_flow_magnitude(flow, vbench.STATIC_TOP_FLOW_SHARE) == pytest.approx(4.0)
    assert vbench.top_flow_magnitude(flow) == pytest.approx(8.0 / 5)


def test_dynamic_degree_reads_about_8_frames_a_second():
    assert [vbench.dynamic_degree_interval(fps) for fps in (4, 8, 12, 16, 20, 24, 25, 30, 60)] == \
        [1, 1, 2, 2, 2, 3, 3, 4, 8]


def test_aesthetic_quality_by_hand():
    assert vbench.aesthetic_quality(np.array([5.0, 6.0, 7.0])) == pytest.approx(60.0)


def test_dino_input_is_vbenchs_transform():
    frames = np.random.default_rng(0).integers(0, 256, (2, 32, 48, 3), dtype=np.uint8)
    x = vbench.dino_input(frames)
    assert x.shape == (2, 3, 224, 336)  # the shorter side to 224, the aspect kept
    from torchvision.transforms.functional import resize
    resized = resize(torch.from_numpy(frames).permute(0, 3, 1, 2), 224, antialias=False)
    assert resized.dtype == torch.uint8  # rounded to uint8 before scaling, as VBench's transform
    expected = (resized.float() / 255 - torch.tensor([0.485, 0.456, 0.406])[:, None, None]) / \
        torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    torch.testing.assert_close(x, expected)


def test_metric_order_on_the_three_videos_through_the_registry():
    """The registered metrics (as the evaluation calls them) rank the three videos as they should."""
    from t2v_core.metrics.evaluate import score_prompt_videos
    from t2v_core.metrics.registry import get_evaluator

    videos = {0: still(), 1: flickering(), 2: moving()}
    features = get_evaluator("frames").features("a prompt", videos, {})
    table = score_prompt_videos("frames", features, ["temporal_flickering"]).set_index("seed")
    assert table.loc[0, "temporal_flickering"] == 100.0
    assert table.loc[1, "temporal_flickering"] < table.loc[2, "temporal_flickering"] < 100.0
    assert list(score_prompt_videos("frames", features, []).columns) == ["seed"]  # switched off


def test_flow_scores_are_vbenchs_on_random_flows():
    """VBench's dynamic_degree.py, written out as it is there: get_score (the mean of the
    int(h w 0.05) largest magnitudes) and check_move (count the pairs above the threshold)."""
    rng = np.random.default_rng(1)
    flows = rng.normal(0, 2, (7, 2, 64, 96)) * np.array([0.1, 0.2, 0.3, 0.5, 0.3, 0.2, 0.1])[:, None, None, None]
    for flow in flows:
        rad = np.sqrt(np.square(flow[0]) + np.square(flow[1]))
        expected = np.mean(abs(np.sort(-rad.flatten()))[:int(64 * 96 * 0.05)])
        assert vbench.top_flow_magnitude(flow) == pytest.approx(expected)
    scores = [vbench.top_flow_magnitude(flow) for flow in flows]
    outcomes = set()
    for factor in (0.5, 1.0, 2.0, 4.0, 8.0):
        shifted = [s * factor for s in scores]
        thres, count_num = 6.0 * (64 / 256.0), round(4 * (8 / 16.0))
        count, moving = 0, False
        for score in shifted:
            if score > thres:
                count += 1
            if count >= count_num:
                moving = True
                break
        assert vbench.is_dynamic(shifted, 64, 96) == moving
        outcomes.add(moving)
    assert outcomes == {True, False}


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
    resized = resize(torch.from_numpy(frames).permute(0, 3, 1, 2), 224, antialias=False)
    assert resized.shape[-2:] == (224, 358)
    crop = normalize(resized[..., :224, :352].float() / 255.0, vbench.IMAGENET_MEAN, vbench.IMAGENET_STD)
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
    embedder = clip._embedder(str(tiny_model_dir / "clip"), "cpu", 32)
    assert embedder.model.visual.output_tokens is False
    assert embedder.frames(video).shape == (8, embedder.model.visual.output_dim)


def test_raft_features_are_the_flows_of_consecutive_frames(tiny_model_dir):
    """64-pixel frames: RAFT runs on them enlarged to 128 and the flow comes back on the frame's
    grid, in its pixels."""
    import torch.nn.functional as F

    from t2v_core.models.loading import load_raft

    video = np.kron(moving(frames=4, step=4), np.ones((1, 2, 2, 1), np.uint8))  # 64x64
    features = vbench.raft_features("a prompt", {0: video}, {"raft": tiny_model_dir / "raft"})[0]
    assert (features["height"], features["width"]) == (64, 64) and len(features["top"]) == 3
    model = load_raft(tiny_model_dir / "raft")
    x = torch.from_numpy(video).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    with torch.no_grad():
        flow = model(x[1:2], x[2:3], num_flow_updates=20)[-1]
    flow = (F.avg_pool2d(flow, 2) / 2)[0].numpy()
    assert features["top"][1] == pytest.approx(vbench.top_flow_magnitude(flow), rel=1e-4)
    assert features["mean"][1] == pytest.approx(float(np.sqrt((flow ** 2).sum(axis=0)).mean()), rel=1e-4)


def test_aesthetic_features_are_the_head_on_normalised_clip_embeddings(tiny_model_dir):
    from t2v_core.models.loading import ClipEmbedder, load_aesthetic, load_clip

    dirs = {"clip": tiny_model_dir / "clip", "aesthetic": tiny_model_dir / "aesthetic"}
    scores = vbench.aesthetic_features("a prompt", {0: moving()}, dirs)[0]
    embeddings = ClipEmbedder(*load_clip(dirs["clip"])).frames(moving())
    head = load_aesthetic(dirs["aesthetic"])
    with torch.no_grad():
        expected = head(torch.from_numpy(embeddings).float())[:, 0].numpy()
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(scores, expected, rtol=1e-5)
    assert vbench.aesthetic_quality(scores) == pytest.approx(10 * float(expected.mean()), rel=1e-5)
