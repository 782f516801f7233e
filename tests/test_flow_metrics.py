"""The flow metrics (t2v_core/metrics/flow.py): VBench's static filter and dynamic degree, Lai
et al.'s warping error, by hand and through the tiny RAFT (torchvision's class, random weights)."""

import math

import numpy as np
import pytest
import torch

from t2v_core.metrics import flow

from test_vbench_metrics import moving


def test_top_flow_magnitude_and_dynamic_degree_by_hand():
    f = np.zeros((2, 20, 20))  # 400 pixels: the top 5% are 20 of them
    f[0, :1, :] = 3.0  # 20 pixels move (3, 4): magnitude 5
    f[1, :1, :] = 4.0
    f[0, 1:3, :] = 1.0  # 40 more move by 1
    assert flow.top_flow_magnitude(f) == pytest.approx(5.0)
    # 64-pixel frames: threshold 6 x 64 / 256 = 1.5 pixels; 8 frames (7 pairs) need round(2) = 2 pairs
    assert flow.is_dynamic([5.0, 0.0, 1.6, 0.0, 0.0, 0.0, 0.0], 64, 64)
    assert not flow.is_dynamic([5.0, 0.0, 1.5, 0.0, 0.0, 0.0, 0.0], 64, 64)
    # 16 frames need 4 pairs, whatever the frame rate (VBench reads every k-th frame instead)
    assert not flow.is_dynamic([2.0] * 3 + [0.0] * 12, 64, 64)
    assert flow.is_dynamic([2.0] * 4 + [0.0] * 11, 64, 64)


def test_static_filter_by_hand():
    """VBench's static filter on a 16-frame 256-pixel video: threshold 3.0 pixels, at most
    round(2 x 16 / 16) = 2 moving consecutive pairs, the first <-> last flows at most 3 x 2 x 2 = 12."""
    still = [0.0] * 15
    assert flow.is_static(still, [0.0, 0.0], 256, 320)
    assert flow.is_static([3.1, 3.1] + still[2:], [12.0, 12.0], 256, 320)  # 2 pairs above, loop at the limit
    assert not flow.is_static([3.1, 3.1, 3.1] + still[3:], [0.0, 0.0], 256, 320)  # a third pair above
    assert flow.is_static([3.0] * 15, [0.0, 0.0], 256, 320)  # at the threshold is not above it
    assert not flow.is_static(still, [0.0, 12.01], 256, 320)  # the last frame far from the first
    # the threshold follows the shorter side: 1.5 pixels at 128
    assert not flow.is_static([1.6] * 3 + still[3:], [0.0, 0.0], 128, 512)
    # 4 frames (3 pairs): round(0.5) = 0 pairs may move, and the loop limit is 0
    assert flow.is_static([0.0] * 3, [0.0, 0.0], 256, 256)
    assert not flow.is_static([0.0] * 3, [0.01, 0.0], 256, 256)
    assert not flow.is_static([3.5, 0.0, 0.0], [0.0, 0.0], 256, 256)


def test_static_filter_reads_the_top_2_percent_of_a_flow():
    f = np.zeros((2, 10, 10))
    f[0].flat[:2] = [3.0, 5.0]  # 2 of 100 magnitudes: the top 2% is both
    f[1].flat[2:5] = 100.0  # the next three would be in a top 5%
    assert flow.top_flow_magnitude(f, flow.STATIC_TOP_FLOW_SHARE) == pytest.approx(100.0)
    f[1].flat[2:5] = 0.0
    assert flow.top_flow_magnitude(f, flow.STATIC_TOP_FLOW_SHARE) == pytest.approx(4.0)
    assert flow.top_flow_magnitude(f) == pytest.approx(8.0 / 5)


def test_dynamic_degree_reads_about_8_frames_a_second():
    assert [flow.dynamic_degree_interval(fps) for fps in (4, 8, 12, 16, 20, 24, 25, 30, 60)] == \
        [1, 1, 2, 2, 2, 3, 3, 4, 8]


def test_flow_scores_are_vbenchs_on_random_flows():
    """VBench's dynamic_degree.py, written out as it is there: get_score (the mean of the
    int(h w 0.05) largest magnitudes) and check_move (count the pairs above the threshold)."""
    rng = np.random.default_rng(1)
    flows = rng.normal(0, 2, (7, 2, 64, 96)) * np.array([0.1, 0.2, 0.3, 0.5, 0.3, 0.2, 0.1])[:, None, None, None]
    for f in flows:
        rad = np.sqrt(np.square(f[0]) + np.square(f[1]))
        expected = np.mean(abs(np.sort(-rad.flatten()))[:int(64 * 96 * 0.05)])
        assert flow.top_flow_magnitude(f) == pytest.approx(expected)
    scores = [flow.top_flow_magnitude(f) for f in flows]
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
        assert flow.is_dynamic(shifted, 64, 96) == moving
        outcomes.add(moving)
    assert outcomes == {True, False}


def test_raft_features_are_the_flows_of_consecutive_frames(tiny_model_dir):
    """64-pixel frames: RAFT runs on them enlarged to 128 and the flow comes back on the frame's
    grid, in its pixels."""
    import torch.nn.functional as F

    from t2v_core.models.loading import load_raft

    video = np.kron(moving(frames=4, step=4), np.ones((1, 2, 2, 1), np.uint8))  # 64x64
    features = flow.raft_features("a prompt", {0: video}, {"raft": tiny_model_dir / "raft"},
                                  metrics=["dynamic_degree"])[0]
    assert (features["height"], features["width"]) == (64, 64) and len(features["dynamic_top"]) == 3
    model = load_raft(tiny_model_dir / "raft")
    x = torch.from_numpy(video).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    with torch.no_grad():
        expected = model(x[1:2], x[2:3], num_flow_updates=20)[-1]
    expected = (F.avg_pool2d(expected, 2) / 2)[0].numpy()
    assert features["dynamic_top"][1] == pytest.approx(flow.top_flow_magnitude(expected), rel=1e-4)
    assert features["mean"][1] == pytest.approx(float(np.sqrt((expected ** 2).sum(axis=0)).mean()), rel=1e-4)




def test_the_static_filter_and_dynamic_degree_score_the_padded_flow_as_vbench(tiny_model_dir):
    """130x132 frames: RAFT runs on them padded to 136x136 (edges repeated) and VBench scores that
    padded flow (the top 2% of 136 x 136 magnitudes, not of 130 x 132); the loop flows are first
    -> last and last -> first; at 24 fps dynamic degree reads frames 0, 3 and 6."""
    import torch.nn.functional as F

    from t2v_core.models.loading import load_raft

    rng = np.random.default_rng(3)
    video = rng.integers(0, 256, (7, 130, 132, 3), dtype=np.uint8)
    features = flow.raft_features("a prompt", {0: video}, {"raft": tiny_model_dir / "raft"}, fps=24,
                                  metrics=["temporal_flickering", "dynamic_degree"])[0]
    model = load_raft(tiny_model_dir / "raft")
    x = F.pad(torch.from_numpy(video).permute(0, 3, 1, 2).float() / 127.5 - 1.0, (2, 2, 3, 3), mode="replicate")
    with torch.no_grad():
        def padded(a, b):
            return model(x[a:a + 1], x[b:b + 1], num_flow_updates=20)[-1][0].numpy()
        pairs = [padded(i, i + 1) for i in range(6)]
        loops = [padded(0, 6), padded(6, 0)]
        dynamic = [padded(0, 3), padded(3, 6)]
    assert pairs[0].shape == (2, 136, 136)
    share = flow.STATIC_TOP_FLOW_SHARE
    np.testing.assert_allclose(features["static_pairs"], [flow.top_flow_magnitude(f, share) for f in pairs], rtol=1e-4)
    np.testing.assert_allclose(features["static_loops"], [flow.top_flow_magnitude(f, share) for f in loops], rtol=1e-4)
    np.testing.assert_allclose(features["dynamic_top"], [flow.top_flow_magnitude(f) for f in dynamic], rtol=1e-4)
    unpadded = flow.top_flow_magnitude(pairs[0][:, 3:133, 2:134], share)
    assert abs(unpadded - features["static_pairs"][0]) > 1e-3 * unpadded  # the padding changes the score
    assert features["flickering"] == pytest.approx(flow_free_flickering(video))
    assert flow.static(features) == flow.is_static(features["static_pairs"], features["static_loops"], 130, 132)


def flow_free_flickering(video):
    from t2v_core.metrics.vbench import temporal_flickering

    return temporal_flickering(video)


def test_temporal_flickering_is_computed_on_static_videos_only():
    from t2v_core.metrics.registry import get_metric

    still = {"static_pairs": [0.0] * 15, "static_loops": [0.0, 0.0], "height": 256, "width": 256, "flickering": 99.0}
    moving_video = {**still, "static_pairs": [5.0] * 15}
    assert get_metric("temporal_flickering").compute(still) == 99.0
    assert math.isnan(get_metric("temporal_flickering").compute(moving_video))
    assert get_metric("static_video").compute(still) == 1.0 and get_metric("static_video").compute(moving_video) == 0.0
    assert get_metric("temporal_flickering").computed_on


def shifted_pair(shift=1, size=(12, 16)):
    """A smooth colour pattern and the same moved right by ``shift`` pixels (the edge repeated)."""
    ys, xs = np.mgrid[0:size[0], 0:size[1]]
    first = np.stack([xs * 15, ys * 20, (xs * ys) % 256], axis=-1).astype(np.uint8)
    second = np.concatenate([np.repeat(first[:, :1], shift, axis=1), first[:, :-shift]], axis=1)
    return first, second


def test_warping_error_by_hand():
    """The second frame is the first moved one pixel right: the forward flow (+1, 0) brings it back
    exactly except in the last column (where the warp repeats the edge); the backward flow
    (-1, 0) makes the round trip, so nothing is occluded. With a zero flow the error is the plain
    frame difference; with a backward flow that does not come back, every pixel is occluded and
    the error is 0 (Lai et al.'s script: the masked sum, all zeros, over the frame's size)."""
    first, second = shifted_pair()
    forward = np.zeros((2, 12, 16))
    forward[0] = 1.0
    backward = -forward
    assert not flow.occluded(forward, backward).any()
    a, b = first / 255.0, second / 255.0
    edge = np.square(b[:, -1] - a[:, -1]).sum() / a.size  # only the last column differs
    assert flow.pair_warping_error(first, second, forward, backward) == pytest.approx(edge)
    zero = np.zeros_like(forward)
    assert flow.pair_warping_error(first, second, zero, zero) == pytest.approx(np.square(b - a).mean())
    assert flow.occluded(forward, zero).all()  # |1 + 0|² = 1 > 0.01 x 1 + 0.5
    assert flow.pair_warping_error(first, second, forward, zero) == 0.0
    assert flow.warping_error([0.001, 0.003]) == pytest.approx(2.0)


def test_the_occlusion_check_marks_motion_boundaries_and_failed_round_trips():
    forward = np.zeros((2, 8, 8))
    forward[0, :, 4:] = 2.0  # the right half moves 2 pixels right: a motion boundary at columns 3 | 4
    backward = np.zeros((2, 8, 8))
    backward[0, :, 6:] = -2.0  # where the right half lands, it comes back
    mask = flow.occluded(forward, backward)
    # column 3: its flow differs from its right neighbour's by 2 (4 > 0.002 + 0.01 x 0)
    assert mask[:, 3].all()
    # columns 4-5 land on 6-7 and come back: visible; columns 0-2 do not move: visible
    assert not mask[:, :3].any() and not mask[:, 4:6].any()
    # columns 6-7 land beyond the frame, where the edge's backward flow (-2) brings them back: visible
    assert not mask[:, 6:].any()
    backward[0, :, 6:] = 0.0  # now the right half does not come back
    assert flow.occluded(forward, backward)[:, 4:].all()


def test_warping_error_through_raft(tiny_model_dir):
    """The evaluator's pair errors are pair_warping_error of RAFT's forward and backward flows."""
    from t2v_core.metrics.registry import get_metric
    from t2v_core.models.loading import load_raft

    rng = np.random.default_rng(4)
    video = rng.integers(0, 256, (3, 128, 136, 3), dtype=np.uint8)
    features = flow.raft_features("a prompt", {0: video}, {"raft": tiny_model_dir / "raft"},
                                  metrics=["warping_error"])[0]
    model = load_raft(tiny_model_dir / "raft")
    x = torch.from_numpy(video).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    with torch.no_grad():
        forward = model(x[1:2], x[2:3], num_flow_updates=20)[-1][0].numpy()
        backward = model(x[2:3], x[1:2], num_flow_updates=20)[-1][0].numpy()
    expected = flow.pair_warping_error(video[1], video[2], forward, backward)
    assert features["pair_warping"][1] == pytest.approx(expected, rel=1e-4)
    assert get_metric("warping_error").compute(features) == pytest.approx(1000 * np.mean(features["pair_warping"]))
    assert set(features) == {"height", "width", "pair_warping"}  # only the flows asked for


def test_the_evaluation_gives_the_flow_evaluator_the_frame_rate_and_its_metrics(tiny_model_dir):
    """evaluate_prompt passes the videos' fps (the rule's video.fps) and the switched-on flow
    metrics: at 24 fps dynamic degree reads frames 0, 3, 6 and 9 of 10; only its flows are made."""
    from t2v_core.metrics.evaluate import evaluate_prompt

    video = np.random.default_rng(6).integers(0, 256, (10, 128, 128, 3), dtype=np.uint8)
    for fps, pairs in ((24, 3), (8, 9)):
        features = {}
        table = evaluate_prompt(["raft"], "a prompt", {0: video}, {"raft": tiny_model_dir / "raft"},
                                features_out=features, chosen=["dynamic_degree"], fps=fps)
        assert len(features["raft"][0]["dynamic_top"]) == pairs
        assert "static_pairs" not in features["raft"][0] and "pair_warping" not in features["raft"][0]
        assert list(table.columns) == ["seed", "dynamic_degree", "flow_magnitude"]
