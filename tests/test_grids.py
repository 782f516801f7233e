"""Qualitative grids: each method's pixels land in its own column (grid) or row (contact sheet)."""

import numpy as np
import pytest
from PIL import Image

from t2v_core.grids import (
    BACKGROUND,
    GAP,
    LABEL_HEIGHT,
    LABEL_WIDTH,
    contact_sheet,
    frame_picks,
    grid_targets,
    side_by_side,
    write_contact_sheet,
    write_prompt_grid,
)
from t2v_core.video_io import read_video, write_mp4

COLOURS = {"Text2Video-Zero": (220, 40, 40), "LAMP": (40, 200, 60), "Ours (Latents)": (40, 70, 230)}
F, H, W = 6, 32, 48


def constant_video(colour, frames=F, height=H, width=W):
    return np.broadcast_to(np.array(colour, np.uint8), (frames, height, width, 3)).copy()


def ramp_video(frames=F, height=H, width=W):
    """Frame t is uniformly grey 15*t, so every frame can be told apart by its value."""
    return np.stack([np.full((height, width, 3), 15 * t, np.uint8) for t in range(frames)])


def assert_label_band(band):
    """A dark band with some light (text) pixels."""
    brightness = band.astype(int).sum(axis=-1)
    assert (brightness <= 3 * 40).mean() > 0.5, "band is not mostly dark"
    assert (brightness >= 3 * 128).sum() >= 20, "no light text pixels in the band"


def test_side_by_side_puts_each_method_in_its_column_under_its_label():
    labels = list(COLOURS)
    grid = side_by_side([constant_video(c) for c in COLOURS.values()], labels)
    assert grid.shape == (F, LABEL_HEIGHT + H, 3 * W + 2 * GAP, 3) and grid.dtype == np.uint8
    for i, colour in enumerate(COLOURS.values()):
        x = i * (W + GAP)
        column = grid[:, LABEL_HEIGHT:, x : x + W]
        assert (column == colour).all(), f"column {i} is not {labels[i]}'s colour"
        assert_label_band(grid[0, :LABEL_HEIGHT, x : x + W])
        assert (grid[:, :LABEL_HEIGHT, x : x + W] == grid[:1, :LABEL_HEIGHT, x : x + W]).all()
    for i in range(2):  # the gaps between columns are background
        gap = grid[:, :, (i + 1) * W + i * GAP : (i + 1) * (W + GAP)]
        assert (gap == BACKGROUND).all()
    # different labels draw different text
    first, second = grid[0, :LABEL_HEIGHT, :W], grid[0, :LABEL_HEIGHT, W + GAP : 2 * W + GAP]
    assert not np.array_equal(first, second)


def test_side_by_side_pads_short_videos_with_their_last_frame_and_resizes_to_the_first():
    long = constant_video((200, 200, 200), frames=F)
    short = ramp_video(frames=3)  # frames 0, 15, 30; padded with 30
    small = constant_video((10, 120, 250), frames=F, height=H // 2, width=W // 2)
    grid = side_by_side([long, short, small], ["long", "short", "small"])
    assert grid.shape[0] == F
    x = W + GAP
    values = grid[:, LABEL_HEIGHT:, x : x + W, 0]
    assert [int(v) for v in values.reshape(F, -1).min(axis=1)] == [0, 15, 30, 30, 30, 30]
    assert (values.reshape(F, -1).max(axis=1) == values.reshape(F, -1).min(axis=1)).all()
    resized = grid[:, LABEL_HEIGHT:, 2 * x : 2 * x + W]
    assert resized.shape[1:3] == (H, W)
    assert (np.abs(resized.astype(int) - (10, 120, 250)) <= 1).all()
    # odd sizes are made even (H.264 yuv420p needs them)
    odd = side_by_side([constant_video((1, 2, 3), height=33, width=47)], ["odd"])
    assert odd.shape[1:3] == (LABEL_HEIGHT + 34, 48)


def test_side_by_side_needs_one_label_per_video():
    with pytest.raises(ValueError, match="one label per video"):
        side_by_side([constant_video((0, 0, 0))], ["a", "b"])


def test_contact_sheet_rows_are_methods_and_columns_evenly_picked_frames():
    videos = [ramp_video(frames=16), constant_video((220, 40, 40), frames=16)]
    sheet = contact_sheet(videos, ["Ours (Noise)", "Per-frame T2I"], frames_per_row=4)
    picks = frame_picks(16, 4)
    assert list(picks) == [0, 5, 10, 15]
    assert sheet.shape == (LABEL_HEIGHT + 2 * (H + GAP), LABEL_WIDTH + 4 * (W + GAP), 3)
    for j, frame in enumerate(picks):
        x = LABEL_WIDTH + GAP + j * (W + GAP)
        assert (sheet[LABEL_HEIGHT : LABEL_HEIGHT + H, x : x + W] == 15 * frame).all()
        y = LABEL_HEIGHT + H + GAP
        assert (sheet[y : y + H, x : x + W] == (220, 40, 40)).all()
        assert_label_band(sheet[:LABEL_HEIGHT, x : x + W])  # "frame k" above each column
    for i in range(2):  # each row's label on its left
        y = LABEL_HEIGHT + i * (H + GAP)
        assert_label_band(sheet[y : y + H, :LABEL_WIDTH])
    # fewer frames than asked: every frame once
    assert list(frame_picks(3, 8)) == [0, 1, 2]


def test_grid_and_contact_sheet_files_are_written_and_read_back(tmp_path):
    paths = {}
    for i, (label, colour) in enumerate(COLOURS.items()):
        paths[label] = tmp_path / f"method{i}.mp4"
        write_mp4(paths[label], constant_video(colour, frames=F - i), fps=4)  # 6, 5, 4 frames
    out_mp4, out_gif = tmp_path / "g" / "grid.mp4", tmp_path / "g" / "grid.gif"
    out_png = tmp_path / "s.png"
    write_prompt_grid(paths, out_mp4, out_gif, fps=4)
    write_contact_sheet(paths, out_png, frames=3)

    video = read_video(out_mp4)
    assert video.shape == (F, LABEL_HEIGHT + H, 3 * W + 2 * GAP, 3)
    gif = Image.open(out_gif)
    assert gif.size == (3 * W + 2 * GAP, LABEL_HEIGHT + H)
    durations = []  # Pillow merges identical consecutive frames, adding up their durations
    for k in range(gif.n_frames):
        gif.seek(k)
        durations.append(gif.info["duration"])
    assert sum(durations) == F * 250
    sheet = np.asarray(Image.open(out_png).convert("RGB"))
    assert sheet.shape == (LABEL_HEIGHT + 3 * (H + GAP), LABEL_WIDTH + 3 * (W + GAP), 3)
    last_gif = np.asarray(gif.convert("RGB"))
    for i, colour in enumerate(COLOURS.values()):
        x, y = i * (W + GAP), LABEL_HEIGHT + H // 2
        # centre of each column, away from the edges that H.264 blurs
        centre = video[:, y - 4 : y + 4, x + W // 2 - 4 : x + W // 2 + 4].astype(int)
        assert (np.abs(centre - colour) <= 12).all(), f"mp4 column {i}"
        assert (np.abs(last_gif[y, x + W // 2].astype(int) - colour) <= 12).all(), f"gif column {i}"
        row = LABEL_HEIGHT + i * (H + GAP) + H // 2
        for j in range(3):  # the sheet shows the decoded mp4 frames: codec tolerance too
            x = LABEL_WIDTH + GAP + j * (W + GAP) + W // 2
            tile = sheet[row - 4 : row + 4, x - 4 : x + 4].astype(int)
            assert (np.abs(tile - colour) <= 12).all(), f"png row {i} column {j}"
    assert not list(tmp_path.rglob(".*")), "temporary files left behind"


def test_grid_targets_one_grid_per_prompt_and_sheets_of_listed_prompts_else_the_first():
    prompts = [
        {"motion": "m1", "prompt_id": "p1", "prompt": "a"},
        {"motion": "m1", "prompt_id": "p2", "prompt": "b"},
        {"motion": "m2", "prompt_id": "p3", "prompt": "c"},
    ]
    patterns = ("g/{motion}/{prompt_id}_seed{seed}.mp4", "s/{motion}/{prompt_id}.png")
    grids = ["g/m1/p1_seed7.mp4", "g/m1/p2_seed7.mp4", "g/m2/p3_seed7.mp4"]
    # listed prompts in config order; unknown ones skipped
    assert grid_targets(prompts, 7, ["c", "b", "zzz"], *patterns) == [
        *grids, "s/m1/p2.png", "s/m2/p3.png"
    ]
    # none of the listed prompts exists: the first prompt of the first motion
    assert grid_targets(prompts, 7, ["a red horse"], *patterns) == [*grids, "s/m1/p1.png"]
    assert grid_targets(prompts, 7, ["B"], *patterns)[-1] == "s/m1/p1.png"  # exact text only


def test_gif_frames_are_the_fast_octree_quantization(tmp_path):
    """Each GIF frame is PIL's fast octree quantization of the frame (median cut, PIL's default,
    took up to 8 s per 320x512 video), close to the frame."""
    from t2v_core.video_io import write_gif

    rng = np.random.default_rng(0)
    gradient = np.linspace(0, 255, 64)[None, :, None] * np.ones((48, 1, 3))
    frames = np.clip(gradient[None] + rng.normal(0, 8, (3, 48, 64, 3)), 0, 255).astype(np.uint8)
    write_gif(tmp_path / "v.gif", frames, fps=4)
    gif = Image.open(tmp_path / "v.gif")
    for k, frame in enumerate(frames):
        gif.seek(k)
        got = np.asarray(gif.convert("RGB"))
        expected = np.asarray(Image.fromarray(frame).quantize(256, method=Image.Quantize.FASTOCTREE).convert("RGB"))
        np.testing.assert_array_equal(got, expected)
        assert np.abs(got.astype(int) - frame).mean() < 4
