"""Data stage (synthetic clips, local-folder validation) and SAM foreground masks."""

import numpy as np
import pytest

from t2v_core.data.sources import DataError, prepare_motion_clips
from t2v_core.data.synthetic import render_clip
from t2v_core.masks import (
    box_of, choose_proposal, contact_sheet, extract_motion_masks, load_masks, motion_masks, save_masks,
)
from t2v_core.models.tokenizer import write_clip_tokenizer_files
from t2v_core.video_io import read_video, write_mp4

from conftest import shared_data


def test_clip_tokenizer_built_offline_matches_open_clip(tmp_path):
    import open_clip
    from transformers import CLIPTokenizer

    write_clip_tokenizer_files(tmp_path)
    ours = CLIPTokenizer.from_pretrained(tmp_path)
    reference = open_clip.get_tokenizer("ViT-L-14")
    for prompt in ["a red horse runs in the sky", "GTA5 poster, a man plays the guitar", "it's café ☕"]:
        ids = ours(prompt).input_ids
        assert ids == reference([prompt])[0][: len(ids)].tolist()
    assert len(ours) == 49408


def test_synthetic_clips_are_deterministic_and_move(tmp_path):
    data = {"source": "synthetic", "seed": 3, "clips_per_motion": 2, "clip_frames": 6, "clip_size": [32, 48]}
    motion = {"name": "shape_right", "subject": "circle"}
    a = prepare_motion_clips(data, motion, tmp_path / "a", min_frames=4)
    b = prepare_motion_clips(data, motion, tmp_path / "b", min_frames=4)
    assert [p.name for p in a] == ["clip_000.mp4", "clip_001.mp4"]
    np.testing.assert_array_equal(read_video(a[0]), read_video(b[0]))
    _, masks = render_clip("shape_right", "circle", 0, 3, 6, 32, 48)
    xs = [np.nonzero(m)[1].mean() for m in masks]
    assert all(x1 > x0 for x0, x1 in zip(xs, xs[1:]))  # moves right


def test_local_folder_problems_are_reported_together(tmp_path):
    folder = tmp_path / "manual" / "horse_run"
    folder.mkdir(parents=True)
    frames, _ = render_clip("horse_run", "square", 0, 0, 8, 32, 32)
    write_mp4(folder / "good.mp4", frames, fps=4)
    write_mp4(folder / "short.mp4", frames[:3], fps=4)
    (folder / "broken.mp4").write_bytes(b"not a video at all" * 100)
    with pytest.raises(DataError) as error:
        prepare_motion_clips({"source": "lamp"}, {"name": "horse_run"}, tmp_path / "out", 6,
                             source_dir=tmp_path / "manual")
    message = str(error.value)
    assert "broken.mp4" in message and "short.mp4" in message and "good.mp4" not in message
    assert not (tmp_path / "out").exists()


def test_proposal_selection_picks_the_moving_region():
    frames = np.zeros((5, 40, 40, 3), dtype=np.uint8)
    for f in range(5):
        frames[f, 10:20, 5 + 5 * f:15 + 5 * f] = 200  # a square moving right
    frames[:, 30:38, 30:38] = 120  # a static square
    moving = motion_masks(frames, 0.08)
    truth = np.zeros((40, 40), bool)
    truth[10:20, 15:25] = True
    assert moving[2][truth].mean() > 0.9 and not moving[2][30:38, 30:38].any()
    static = np.zeros((40, 40), bool)
    static[30:38, 30:38] = True
    everything = np.ones((40, 40), bool)
    proposals = np.stack([static, everything, truth])
    assert choose_proposal(proposals, moving[2]) == 2
    x0, y0, x1, y1 = box_of(moving[2], min_area=0.001)
    assert x0 <= 15 and y0 <= 10 and x1 >= 24 and y1 >= 19
    np.testing.assert_array_equal(box_of(np.zeros((40, 40), bool), 0.001), [0, 0, 39, 39])


def test_masks_round_trip_compactly(tmp_path):
    masks = np.random.default_rng(0).random((7, 33, 45)) > 0.5
    save_masks(tmp_path / "m.npz", masks)
    np.testing.assert_array_equal(load_masks(tmp_path / "m.npz"), masks)
    sheet = contact_sheet(np.zeros((7, 33, 45, 3), np.uint8), masks, columns=4)
    assert sheet.shape == (33, 4 * 45, 3) and sheet[..., 0].max() > 0


@pytest.mark.parametrize("clip", ["vtest.avi", "box.mp4", "cup.mp4"])
def test_masks_on_real_clips_with_tiny_sam(clip, tiny_model_dir, tmp_path):
    source = shared_data("clips", clip)
    frames = read_video(source, range(0, 40, 8))[:, ::4, ::4]  # 5 frames at quarter size
    small = tmp_path / "clip.mp4"
    write_mp4(small, frames[:, : frames.shape[1] // 2 * 2, : frames.shape[2] // 2 * 2], fps=4)
    table = extract_motion_masks(tiny_model_dir / "sam", [small], tmp_path / "masks",
                                 {"motion_threshold": 0.08, "min_area": 0.001})
    masks = load_masks(tmp_path / "masks" / "clip.npz")
    assert masks.shape[0] == 5 and masks.dtype == bool
    assert table["foreground_fraction"].iloc[0] == pytest.approx(masks.mean())
    assert (tmp_path / "masks" / "clip_overlay.png").stat().st_size > 0
