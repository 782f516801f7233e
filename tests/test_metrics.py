"""CLIP metrics against hand-computed values (cosine similarities x 100)."""

import logging
import math

import numpy as np
import pytest

from t2v_core.metrics import alignment, consistency, diversity, evaluate_prompt_videos

E1, E2, E3 = np.eye(3)


def test_alignment_is_the_mean_frame_to_text_cosine():
    text = 5.0 * E1  # not normalised: only directions count
    frames = np.stack([2 * E1, E2, E1 + E2])  # cos = 1, 0, 1/sqrt(2)
    assert alignment(frames, text) == pytest.approx(100 * (1 + 0 + 2 ** -0.5) / 3)
    assert alignment(np.stack([-E1, -3 * E1]), text) == pytest.approx(-100)


def test_consistency_is_the_mean_cosine_of_consecutive_frames():
    sixty = np.array([0.5, 3 ** 0.5 / 2, 0.0])  # 60 degrees from E1
    frames = np.stack([E1, 4 * E1, sixty, E3])  # pairs: 1, 0.5, 0
    assert consistency(frames) == pytest.approx(100 * (1 + 0.5 + 0) / 3)
    assert consistency(np.stack([E1] * 5)) == pytest.approx(100)
    with pytest.raises(ValueError, match="at least 2 frames"):
        consistency(E1[None])


def test_diversity_is_the_mean_pairwise_cosine_of_video_embeddings():
    # video embeddings (mean of normalised frames): E1, E2 and (E1 + E2)/sqrt(2)
    videos = [np.stack([E1, E1]), np.stack([E2, 7 * E2]), np.stack([E1, E2])]
    expected = 100 * (0 + 2 ** -0.5 + 2 ** -0.5) / 3
    assert diversity(videos) == pytest.approx(expected)
    assert diversity([np.stack([E1, E2]), np.stack([E2, E1])]) == pytest.approx(100)  # same frames


def test_diversity_of_a_single_seed_is_nan_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        value = diversity([np.stack([E1, E2])])
    assert math.isnan(value)
    assert "diversity needs >= 2 seeds" in caplog.text


class FixedEmbedder:
    """Frames embed to E1 (red) or E2 (anything else); the text is E1. Counts calls."""

    def __init__(self):
        self.frame_calls, self.text_calls = 0, 0

    def frames(self, frames):
        self.frame_calls += 1
        return np.stack([E1 if f[0, 0, 0] > 128 else E2 for f in frames])

    def text(self, prompt):
        self.text_calls += 1
        return E1


def test_each_video_is_embedded_once_and_rows_carry_its_values():
    red = np.full((4, 8, 8, 3), 200, np.uint8)
    mixed = red.copy()
    mixed[1::2] = 0  # frames: red, dark, red, dark
    embedder = FixedEmbedder()
    table = evaluate_prompt_videos(embedder, "a red thing", {0: red, 1: mixed})
    assert embedder.frame_calls == 2 and embedder.text_calls == 1
    assert list(table["seed"]) == [0, 1]
    assert list(table["alignment"]) == pytest.approx([100.0, 50.0])
    assert list(table["consistency"]) == pytest.approx([100.0, 0.0])
    # video embeddings E1 and (E1 + E2)/sqrt(2): cosine 1/sqrt(2), the same on every row
    assert list(table["prompt_diversity"]) == pytest.approx([100 * 2 ** -0.5] * 2)
