"""CLIP metrics against hand-computed values (cosine similarities x 100)."""

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from t2v_core.metrics.clip import (
    alignment, clip_features, consistency, diversity, diversity_across_prompts, diversity_frames,
)
from t2v_core.metrics.evaluate import evaluate_videos, score_prompt_videos
from t2v_core.models.loading import ClipEmbedder

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
    # frames are normalised before averaging: E1 and 3*E2 average to the direction of E1 + E2
    assert diversity([np.stack([E1, 3 * E2]), (E1 + E2)[None]]) == pytest.approx(100)


def test_frame_level_diversity_compares_frames_of_the_same_index():
    # two videos of the same frames in another order: 100 as videos, 0 frame by frame
    assert diversity_frames([np.stack([E1, E2]), np.stack([E2, E1])]) == pytest.approx(0.0)
    assert diversity([np.stack([E1, E2]), np.stack([E2, E1])]) == pytest.approx(100.0)
    # three videos: pairs (a, b) = (1 + 0)/2, (a, c) = (1 + 1)/2, (b, c) = (1 + 0)/2
    a, b, c = np.stack([E1, E2]), np.stack([E1, E3]), np.stack([2 * E1, 5 * E2])
    assert diversity_frames([a, b, c]) == pytest.approx(100 * (0.5 + 1.0 + 0.5) / 3)


def test_diversity_across_prompts_by_hand(caplog):
    # prompt p: videos embedded E1 and E2; q: E1; r: E3. p's videos against q's and r's:
    # cos(E1, E1) = 1, cos(E1, E3) = 0, cos(E2, E1) = 0, cos(E2, E3) = 0 -> 25
    values = diversity_across_prompts({"p": [E1[None], E2[None]], "q": [E1[None]], "r": [np.stack([E3, 2 * E3])]})
    assert values["p"] == pytest.approx(25.0)
    assert values["q"] == pytest.approx(100 * (1 + 0 + 0) / 3)  # against E1, E2, E3
    assert values["r"] == pytest.approx(0.0)
    with caplog.at_level(logging.WARNING):
        assert math.isnan(diversity_across_prompts({"p": [E1[None], E2[None]]})["p"])
    assert "needs >= 2 prompts" in caplog.text


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
    table = score_prompt_videos("clip", clip_features(embedder, "a red thing", {0: red, 1: mixed}))
    assert embedder.frame_calls == 2 and embedder.text_calls == 1
    assert list(table["seed"]) == [0, 1]
    assert list(table["alignment"]) == pytest.approx([100.0, 50.0])
    assert list(table["consistency"]) == pytest.approx([100.0, 0.0])
    # video embeddings E1 and (E1 + E2)/sqrt(2): cosine 1/sqrt(2), the same on every row
    assert list(table["prompt_diversity_seeds"]) == pytest.approx([100 * 2 ** -0.5] * 2)
    # frame by frame: red-red, red-dark, red-red, red-dark -> (1 + 0 + 1 + 0) / 4
    assert list(table["prompt_diversity_frames"]) == pytest.approx([50.0] * 2)
    assert "prompt_diversity_prompts" not in table  # over a motion's prompts: see score_motion


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    from t2v_core.models.loading import load_clip
    from t2v_core.models.prepare import prepare_model

    clip_dir = tmp_path_factory.mktemp("clip") / "clip"
    prepare_model("clip", clip_dir, {"source": "tiny", "seed": 0})
    return clip_dir, load_clip(clip_dir)


def test_clip_embedder_is_batch_invariant_and_unit_norm(tiny_clip):
    _, (model, preprocess, tokenizer) = tiny_clip
    frames = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    one_batch = ClipEmbedder(model, preprocess, tokenizer, batch_size=64).frames(frames)
    batches_of_two = ClipEmbedder(model, preprocess, tokenizer, batch_size=2).frames(frames)
    assert one_batch.shape[0] == 5 and np.allclose(one_batch, batches_of_two, atol=1e-5)
    assert np.allclose(np.linalg.norm(one_batch, axis=1), 1.0)
    assert not np.allclose(one_batch[0], one_batch[1])  # different frames, different embeddings
    text = ClipEmbedder(model, preprocess, tokenizer).text("a red square")
    assert text.shape == one_batch.shape[1:] and np.linalg.norm(text) == pytest.approx(1.0)


def _sample_folder(tmp_path, prompts, seeds, rng):
    from t2v_core.prompts import sample_file
    from t2v_core.video_io import write_mp4

    folder = tmp_path / "samples" / "lamp" / "rain"
    for pid in prompts:
        for seed in seeds:
            write_mp4(sample_file(folder, pid, seed), rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8), fps=4)
    return folder


def test_evaluate_videos_writes_one_row_per_video_with_the_ids(tiny_clip, tmp_path):
    from t2v_core.prompts import sample_file
    from t2v_core.video_io import read_video

    clip_dir, (model, preprocess, tokenizer) = tiny_clip
    prompts = {"p0": "rain falls", "p1": "snow falls"}
    folder = _sample_folder(tmp_path, prompts, (3, 7), np.random.default_rng(1))
    out = tmp_path / "metrics" / "lamp.csv"
    table = evaluate_videos({"clip": clip_dir}, {"rain": (folder, prompts)}, [7, 3], "lamp", out, batch_size=3)
    written = pd.read_csv(out)
    assert list(written.columns) == ["method", "motion", "prompt_id", "prompt", "seed", "alignment", "consistency",
                                     "prompt_diversity_seeds", "prompt_diversity_frames", "prompt_diversity_prompts"]
    assert list(written["seed"]) == [3, 7, 3, 7] and set(written["method"]) == {"lamp"}
    assert list(written["prompt"]) == ["rain falls"] * 2 + ["snow falls"] * 2
    assert list(written["prompt_id"]) == ["p0", "p0", "p1", "p1"]
    # the same numbers as the metric functions on the embeddings of the decoded videos
    embedder = ClipEmbedder(model, preprocess, tokenizer)
    for pid, prompt in prompts.items():
        rows = written[written["prompt_id"] == pid]
        frames = {seed: embedder.frames(read_video(sample_file(folder, pid, seed))) for seed in (3, 7)}
        text = embedder.text(prompt)
        assert list(rows["alignment"]) == pytest.approx([alignment(frames[s], text) for s in (3, 7)], abs=1e-3)
        assert list(rows["consistency"]) == pytest.approx([consistency(frames[s]) for s in (3, 7)], abs=1e-3)
        assert rows["prompt_diversity_seeds"].tolist() == pytest.approx([diversity(list(frames.values()))] * 2,
                                                                         abs=1e-3)
        assert rows["prompt_diversity_frames"].tolist() == pytest.approx(
            [diversity_frames(list(frames.values()))] * 2, abs=1e-3)
    # across prompts: the two prompts of the motion against each other (one value, both prompts)
    embedded = {pid: [embedder.frames(read_video(sample_file(folder, pid, seed))) for seed in (3, 7)]
                for pid in prompts}
    across = diversity_across_prompts(embedded)
    assert across["p0"] == pytest.approx(across["p1"])
    assert written["prompt_diversity_prompts"].tolist() == pytest.approx([across["p0"]] * 4, abs=1e-3)
    assert table["alignment"].tolist() == pytest.approx(written["alignment"].tolist())


@pytest.mark.parametrize("damage", ["truncated", "deleted"])
def test_a_damaged_sample_is_named_with_the_command_that_redoes_it(tiny_clip, tmp_path, damage):
    from t2v_core.metrics.evaluate import EvaluationError
    from t2v_core.prompts import sample_file

    clip_dir, _ = tiny_clip
    folder = _sample_folder(tmp_path, {"p0": "rain falls"}, (0, 1), np.random.default_rng(2))
    video = Path(sample_file(folder, "p0", 1))
    if damage == "truncated":
        video.write_bytes(video.read_bytes()[:300])
    else:
        video.unlink()
    out = tmp_path / "rain.csv"
    with pytest.raises(EvaluationError) as error:
        evaluate_videos({"clip": clip_dir}, {"rain": (folder, {"p0": "rain falls"})}, [0, 1], "lamp", out)
    assert str(error.value).startswith(f"{video}: cannot be read (")
    assert f"snakemake all --forcerun {folder} " in str(error.value)
    assert not out.exists()


def test_an_evaluate_job_loads_each_evaluators_models_once(tiny_model_dir, tmp_path, monkeypatch):
    """However many motions and prompts: DINO, the aesthetic head and CLIP (once for the CLIP
    metrics, once in the aesthetic evaluator) are loaded once per job, and score as when each
    prompt's features load them from their folders."""
    import t2v_core.models.loading as loading
    from t2v_core.metrics import vbench

    calls = []
    for name in ("load_clip", "load_dino", "load_aesthetic"):
        original = getattr(loading, name)
        monkeypatch.setattr(loading, name, lambda *a, _f=original, _n=name, **k: calls.append(_n) or _f(*a, **k))
    prompts = {"p0": "rain falls", "p1": "snow falls"}
    rng = np.random.default_rng(3)
    samples = {motion: (_sample_folder(tmp_path / motion, prompts, (0, 1), rng), prompts) for motion in ("m1", "m2")}
    dirs = {kind: tiny_model_dir / kind for kind in ("clip", "dino", "aesthetic")}
    table = evaluate_videos(dirs, samples, [0, 1], "lamp", tmp_path / "lamp.csv", evaluators=("clip", "dino", "aesthetic"),
                            metrics_on=["subject_consistency_dino", "aesthetic_quality"])
    assert sorted(calls) == ["load_aesthetic", "load_clip", "load_clip", "load_dino"]
    from t2v_core.prompts import sample_file
    from t2v_core.video_io import read_video

    folder = samples["m2"][0]
    videos = {seed: read_video(sample_file(folder, "p1", seed)) for seed in (0, 1)}
    by_folder = vbench.dino_features("snow falls", videos, dirs)
    rows = table[(table["motion"] == "m2") & (table["prompt_id"] == "p1")]
    assert list(rows["subject_consistency_dino"]) == pytest.approx(
        [vbench.subject_consistency(by_folder[seed]) for seed in (0, 1)], abs=1e-9)
