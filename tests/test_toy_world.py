"""The toy world (deterministic shapes, captions, motion clips) and its ground-truth motion metric."""

import math

import numpy as np
import pytest

from t2v_core.toy.motion_metric import parse_prompt, score_motion, track_subject
from t2v_core.toy.world import (
    BACKGROUNDS, COLOURS, MOTIONS, PRETRAINING_MOTIONS, Subject, caption, motion_clip, motion_clips, random_subject, render,
    sample_images,
)

RED_SQUARE = Subject("square", "red", "white")


def test_same_seed_same_world_other_seed_other_world():
    a, b, c = sample_images(20, 32, 0), sample_images(20, 32, 0), sample_images(20, 32, 1)
    assert np.array_equal(a[0], b[0]) and a[2] == b[2]
    assert not np.array_equal(a[0], c[0])
    x, y = motion_clip("grows", RED_SQUARE, 6, 32, 3), motion_clip("grows", RED_SQUARE, 6, 32, 3)
    assert np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1])
    assert not np.array_equal(x[0], motion_clip("grows", RED_SQUARE, 6, 32, 4)[0])


def test_captions_and_spinning_circles():
    assert caption(RED_SQUARE) == "a red square on a white background"
    assert caption(Subject("star", "blue", "gray"), "moves up") == "a blue star moves up on a gray background"
    rng = np.random.default_rng(0)
    assert all(random_subject(rng, "spins").shape != "circle" for _ in range(200))
    assert any(random_subject(rng).shape == "circle" for _ in range(200))


@pytest.mark.parametrize("shape, area", [("square", 4 * 10**2), ("circle", math.pi * 10**2)])
def test_render_areas_and_colours(shape, area):
    image, mask = render(Subject(shape, "green", "black"), 64, (32, 32), 10.0)
    assert mask.sum() == pytest.approx(area, rel=0.04)
    assert (image[mask] == COLOURS["green"]).all(1).mean() > 0.8  # the rest: anti-aliased edge
    assert (image[~mask] == BACKGROUNDS["black"]).all(1).mean() > 0.9


def test_clips_do_their_motion_and_stay_in_frame():
    for motion in MOTIONS:
        for subject, frames, masks in motion_clips(motion, 4, 8, 64, 0):
            assert frames.shape == (8, 64, 64, 3) and masks.shape == (8, 64, 64)
            # the subject never touches the border, so it is whole in every frame
            assert not masks[:, [0, -1], :].any() and not masks[:, :, [0, -1]].any()
            xs = [np.nonzero(m)[1].mean() for m in masks]
            ys = [np.nonzero(m)[0].mean() for m in masks]
            areas = masks.reshape(8, -1).sum(1)
            if motion == "moves right":
                assert 0.3 * 64 < xs[-1] - xs[0] < 0.55 * 64 and abs(ys[-1] - ys[0]) < 1
            elif motion == "moves up":
                assert 0.3 * 64 < ys[0] - ys[-1] < 0.55 * 64 and abs(xs[-1] - xs[0]) < 1
            elif motion == "grows":
                assert 3 < areas[-1] / areas[0] < 5.5
            else:
                assert subject.shape != "circle" and abs(areas[-1] / areas[0] - 1) < 0.1
                assert not np.array_equal(masks[0], masks[-1])


def test_metric_recognises_every_motion_of_the_world():
    for motion in MOTIONS:
        for subject, frames, _ in motion_clips(motion, 3, 12, 64, 1):
            result = score_motion(frames, subject.colour, motion)
            assert result["direction_correct"], (motion, subject, result)
            assert 0.7 < result["magnitude_ratio"] < 1.3, (motion, subject, result)
            assert result["tracked_fraction"] == 1.0
            others = [m for m in MOTIONS if m != motion and score_motion(frames, subject.colour, m)["direction_correct"]]
            assert others == [], (motion, others)


def test_metric_rejects_still_and_wrong_videos():
    subject, frames, _ = motion_clips("moves up", 1, 10, 64, 2)[0]
    assert not score_motion(frames, subject.colour, "moves right")["direction_correct"]
    still = np.repeat(frames[:1], 10, axis=0)
    for motion in MOTIONS:
        result = score_motion(still, subject.colour, motion)
        assert not result["direction_correct"]
    assert score_motion(still, subject.colour, "moves up")["magnitude_ratio"] == 0.0
    backwards = frames[::-1]
    assert not score_motion(backwards, subject.colour, "moves up")["direction_correct"]


def test_metric_survives_noise_and_blur():
    rng = np.random.default_rng(0)
    for motion in MOTIONS:
        subject, frames, _ = motion_clips(motion, 1, 10, 64, 3)[0]
        blurred = frames.astype(float)
        blurred = (blurred + np.roll(blurred, 1, 1) + np.roll(blurred, 1, 2) + np.roll(blurred, (1, 1), (1, 2))) / 4
        noisy = np.clip(blurred + rng.normal(0, 10, frames.shape), 0, 255).astype(np.uint8)
        result = score_motion(noisy, subject.colour, motion)
        assert result["direction_correct"] and 0.6 < result["magnitude_ratio"] < 1.4, (motion, result)


def test_missing_subject_is_a_miss_not_an_error():
    frames, _ = motion_clip("moves right", Subject("circle", "red", "black"), 8, 32, 0)
    track = track_subject(frames, "blue")
    assert not track["found"].any() and np.isnan(track["centroid"]).all()
    result = score_motion(frames, "blue", "moves right")
    assert result["direction_correct"] is False and math.isnan(result["magnitude_ratio"])
    with pytest.raises(ValueError, match="dances"):
        score_motion(frames, "red", "dances")


def test_parse_prompt():
    assert parse_prompt("a red star moves up on a white background") == ("red", "moves up")
    assert parse_prompt("A Yellow circle grows") == ("yellow", "grows")
    assert parse_prompt("a horse runs in the sky") == (None, None)
    assert parse_prompt("a square spins on a gray background") == (None, "spins")


@pytest.mark.parametrize("motion", list(PRETRAINING_MOTIONS))
def test_pretraining_motions_are_the_demo_motions_played_backwards(motion):
    """The toy motion adapter's motions: each is a demo motion reversed, none is a demo motion."""
    assert motion not in MOTIONS
    for subject, frames, masks in motion_clips(motion, 6, 8, 64, 0):
        backwards = score_motion(frames[::-1], subject.colour, PRETRAINING_MOTIONS[motion])
        assert backwards["direction_correct"], (motion, subject)
        assert not score_motion(frames, subject.colour, PRETRAINING_MOTIONS[motion])["direction_correct"]
        assert masks[0].sum() > 0 and masks[-1].sum() > 0  # the subject stays in frame


def test_a_large_subject_moving_far_stays_in_frame():
    """A draw whose shift leaves no room is cut to fit (it raised before)."""
    for index in range(40):
        for motion in ("moves right", "moves left"):
            frames, masks = motion_clip(motion, Subject("square", "red", "black"), 4, 32, index)
            assert not masks[:, 0].any() and not masks[:, -1].any()
