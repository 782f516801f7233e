"""Data stage (synthetic clips, local-folder validation) and SAM foreground masks."""

import numpy as np
import pytest

from t2v_core.data.sources import prepare_motion_clips
from t2v_core.data.scan import scan_clip
from t2v_core.data.validation import DataError
from t2v_core.data.synthetic import render_clip
from t2v_core.masks import (
    box_of, choose_by_text, choose_proposal, clean_motion, contact_sheet, extract_motion_masks, load_masks,
    mask_iou, motion_masks, save_masks, segment_by_subject,
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
    data = {"source": "synthetic", "seed": 3, "clips_per_motion": 2, "clip_frames": 6, "clip_size": [32, 48], "damaged_run": 4, "damaged_jump": 10.0}
    motion = {"name": "shape_right", "subject": "circle"}
    a = prepare_motion_clips(data, motion, tmp_path / "a", num_frames=4)
    b = prepare_motion_clips(data, motion, tmp_path / "b", num_frames=4)
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
        prepare_motion_clips({"source": "lamp", "damaged_run": 4, "damaged_jump": 10.0}, {"name": "horse_run"}, tmp_path / "out", 6,
                             source_dir=tmp_path / "manual")
    message = str(error.value)
    # a clip that cannot be decoded is refused; a short one only leaves nothing to train on
    assert "broken.mp4: cannot be decoded" in message and "good.mp4" not in message and "short.mp4" not in message
    assert not (tmp_path / "out").exists()
    (folder / "broken.mp4").unlink()
    made = prepare_motion_clips({"source": "lamp", "damaged_run": 4, "damaged_jump": 10.0}, {"name": "horse_run"},
                                tmp_path / "out", 6, source_dir=tmp_path / "manual")
    assert [p.name for p in made] == ["good.mp4"]


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


RED, BLUE = np.array([220, 30, 30]), np.array([30, 30, 220])


def two_squares_clip(frames=5, size=48):
    """A red square moving right and a blue square moving down, on grey; and their masks."""
    video = np.full((frames, size, size, 3), 120, np.uint8)
    red = np.zeros((frames, size, size), bool)
    blue = np.zeros((frames, size, size), bool)
    for f in range(frames):
        red[f, 6:16, 4 + 4 * f:14 + 4 * f] = True
        blue[f, 24 + 3 * f:32 + 3 * f, 30:38] = True
    video[red], video[blue] = RED, BLUE
    return video, red, blue


class ColourEmbedder:
    """Stands in for CLIP: an image's embedding is its mean colour; 'red'/'blue' texts are axes."""

    def __init__(self):
        self.calls = 0

    def frames(self, crops):
        self.calls += 1
        return np.stack([c.reshape(-1, 3).mean(0) / np.linalg.norm(c.reshape(-1, 3).mean(0)) for c in crops])

    def text(self, prompt):
        return {"a photo of a red": RED, "a photo of a blue": BLUE}[prompt] / 255.0


class RegionPredictor:
    """Stands in for SamPredictor: proposes (the non-grey region under the box, the box, the frame)."""

    def set_image(self, frame):
        self.frame = frame

    def predict(self, box, multimask_output):
        h, w = self.frame.shape[:2]
        x0, y0, x1, y1 = np.round(box).astype(int)
        inside = np.zeros((h, w), bool)
        inside[y0:y1 + 1, x0:x1 + 1] = True
        coloured = (self.frame != 120).any(-1)
        # the coloured pixels of the colour most frequent under the box
        colours, counts = np.unique(self.frame[inside & coloured].reshape(-1, 3), axis=0, return_counts=True)
        region = (self.frame == colours[np.argmax(counts)]).all(-1) if len(colours) else inside
        return np.stack([region, inside, np.ones((h, w), bool)]), np.ones(3), None


class FirstFrameProposals:
    """Stands in for SamAutomaticMaskGenerator: the two squares and the background."""

    def __init__(self, red, blue):
        self.masks = [red, blue, ~(red | blue)]

    def generate(self, frame):
        return [{"segmentation": m} for m in self.masks]


def test_clean_motion_drops_specks_so_the_box_fits_the_mover():
    mask = np.zeros((100, 100), bool)
    mask[40:60, 30:55] = True  # the moving subject
    mask[2, 97] = mask[95, 3] = mask[90:92, 90:92] = True  # compression specks
    assert np.array_equal(box_of(mask, 0.001, pad=0), [3, 2, 97, 95])  # raw: whole frame
    np.testing.assert_array_equal(box_of(clean_motion(mask), 0.001, pad=0), [30, 40, 54, 59])


@pytest.mark.parametrize("subject, expected", [("red", 0), ("blue", 1)])
def test_clip_subject_picks_the_named_subject_and_tracks_it(subject, expected):
    video, red, blue = two_squares_clip()
    truth = [red, blue][expected]
    proposals = np.stack(FirstFrameProposals(red[0], blue[0]).masks)
    assert choose_by_text(ColourEmbedder(), video[0], proposals, f"a photo of a {subject}") == expected
    embedder = ColourEmbedder()
    config = {"subject_template": "a photo of a {subject}", "min_area": 0.001}
    masks = segment_by_subject(RegionPredictor(), FirstFrameProposals(red[0], blue[0]), embedder,
                               video, subject, config)
    np.testing.assert_array_equal(masks, truth)  # followed through every frame
    assert embedder.calls == 1  # proposals are scored on the first frame only


def test_no_first_frame_proposal_means_no_subject_masks():
    video, red, blue = two_squares_clip()
    empty = FirstFrameProposals(red[0], blue[0])
    empty.masks = []
    assert segment_by_subject(RegionPredictor(), empty, ColourEmbedder(), video, "red",
                              {"subject_template": "a photo of a {subject}", "min_area": 0.001}) is None


def test_mask_iou_values():
    a = np.zeros((4, 4), bool)
    a[:2] = True
    b = np.zeros((4, 4), bool)
    b[1:3] = True
    np.testing.assert_allclose(mask_iou(np.stack([a, b, ~a]), a), [1.0, 4 / 12, 0.0])


@pytest.mark.parametrize("strategy", ["motion", "clip_subject"])
@pytest.mark.parametrize("clip", ["vtest.avi", "box.mp4", "cup.mp4"])
def test_masks_on_real_clips_with_tiny_sam(clip, strategy, tiny_model_dir, tmp_path):
    source = shared_data("clips", clip)
    frames = read_video(source, range(0, 40, 8))[:, ::4, ::4]  # 5 frames at quarter size
    small = tmp_path / "clip.mp4"
    write_mp4(small, frames[:, : frames.shape[1] // 2 * 2, : frames.shape[2] // 2 * 2], fps=4)
    config = {"strategy": strategy, "motion_threshold": 0.08, "min_area": 0.001, "points_per_side": 4,
              # random tiny SAM weights never pass SAM's default quality filters
              "proposal_iou_threshold": 0.0, "proposal_stability_threshold": 0.0,
              "subject_template": "a photo of a {subject}"}
    table = extract_motion_masks(tiny_model_dir / "sam", [small], tmp_path / "masks", config,
                                 subject="person", clip_dir=tiny_model_dir / "clip")
    masks = load_masks(tmp_path / "masks" / "clip.npz")
    assert masks.shape == (5, *read_video(small).shape[1:3]) and masks.dtype == bool
    assert table["foreground_fraction"].iloc[0] == pytest.approx(masks.mean())
    assert (tmp_path / "masks" / "clip_overlay.png").stat().st_size > 0


def test_clips_are_decoded_in_order_as_training_reads_them(tmp_path):
    # the check and the training see the same frames: one sequential decode
    source = shared_data("clips", "cup.mp4")
    frames = read_video(source)
    scan = scan_clip(source)
    assert scan.frames == len(frames) == 217
    expected = np.abs(np.diff(frames.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(scan.differences, expected, rtol=1e-5)


def test_widths_that_decord_pads_are_read_through_ffmpeg(tmp_path):
    # decord returns 48-pixel-wide frames as (H, 48, 4): its row padding as a 4th channel
    frames = np.stack([np.full((32, 48, 3), 40 * i, dtype=np.uint8) for i in range(6)])
    write_mp4(tmp_path / "w48.mp4", frames, fps=4)
    video = read_video(tmp_path / "w48.mp4")
    assert video.shape == (6, 32, 48, 3)
    assert np.abs(video.astype(int) - frames).max() <= 3
    assert scan_clip(tmp_path / "w48.mp4").frames == 6


def test_motion_masks_and_their_cleaning_as_the_whole_clip_formulas():
    """Computed in blocks (a long real clip in float took 18 GB in extract_masks), the masks
    equal the formulas on the whole clip: |frame - temporal median| averaged over channels
    above the threshold, and a binary opening with the square kernel (scipy's)."""
    from scipy import ndimage

    from t2v_core.masks import clean_motion, motion_masks

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (37, 50, 70, 3), dtype=np.uint8)
    background = np.median(frames, axis=0)
    expected = np.abs(frames.astype(np.float32) - background).mean(axis=-1) / 255.0 > 0.3
    np.testing.assert_array_equal(motion_masks(frames, 0.3, chunk=5), expected)
    for p in (0.1, 0.6, 0.95):
        mask = rng.random((120, 90)) < p
        mask[10:40, 10:50] = True
        opened = ndimage.binary_opening(mask, structure=np.ones((3, 3), bool))
        labels, _ = ndimage.label(opened)
        areas = np.bincount(labels.ravel())[1:]
        keep = np.isin(labels, np.flatnonzero(areas >= 0.2 * areas.max()) + 1)
        np.testing.assert_array_equal(clean_motion(mask), keep)


def test_motion_masks_of_a_long_clip_take_less_memory_than_the_clip():
    """numpy reports its buffers to tracemalloc: the whole-clip formula's float copies of a
    200-frame clip peaked at 16x the clip's bytes; in blocks, under twice (the bool masks and
    a median block's copy)."""
    import tracemalloc

    from t2v_core.masks import motion_masks

    frames = np.random.default_rng(1).integers(0, 256, (200, 96, 128, 3), dtype=np.uint8)
    tracemalloc.start()
    try:
        motion_masks(frames, 0.3)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * frames.nbytes
