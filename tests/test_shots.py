"""Bring your own motion: clips with a lead-in, fades, cuts, flashes, damage, short shots and any
frame rate become clean training shots (t2v_core.data.shots and .clip_report)."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter

from t2v_core.data.scan import scan_clip
from t2v_core.data.shots import ShotRules, find_shots, resampled_indices
from t2v_core.data.sources import prepare_motion_clips
from t2v_core.data.validation import DataError, list_clips
from t2v_core.grids import GAP, LABEL_HEIGHT
from t2v_core.video_io import read_video, write_mp4

from conftest import shared_data

HEIGHT, WIDTH = 96, 128
DATA = {"source": "lamp", "damaged_run": 4, "damaged_jump": 10.0, "shots": "split", "train_fps": None,
        "cut_threshold": 3.0}
SUBJECT = np.array([250, 240, 60], np.uint8)


def shot(seed: int, frames: int, speed: float = 1.5, start: float = 10.0) -> np.ndarray:
    """A shot of its own look: a smooth random texture panning left, a yellow block moving right
    by ``speed`` pixels a frame from x = ``start``."""
    rng = np.random.default_rng(seed)
    texture = gaussian_filter(rng.random((HEIGHT, WIDTH + 200, 3)), sigma=(6, 6, 0))
    texture = (texture - texture.min()) / np.ptp(texture) * 180 * (rng.random(3) * 0.6 + 0.2) + 40
    out = []
    for k in range(frames):
        frame = texture[:, int(1.5 * k) % 200:][:, :WIDTH].copy()
        x = int(round(start + speed * k)) % (WIDTH - 16)
        frame[40:60, x:x + 16] = SUBJECT
        out.append(frame.astype(np.uint8))
    return np.stack(out)


def damage(frames: np.ndarray, at: list[int], blocks: int = 12, seed: int = 0) -> np.ndarray:
    """Macroblock garbage: ``blocks`` 16x16 blocks of noise on each of the frames ``at``."""
    frames, rng = frames.copy(), np.random.default_rng(seed)
    for k in at:
        for _ in range(blocks):
            y, x = rng.integers(0, HEIGHT // 16) * 16, rng.integers(0, WIDTH // 16) * 16
            frames[k, y:y + 16, x:x + 16] = rng.integers(0, 256, (16, 16, 3))
    return frames


BLACK = np.zeros((1, HEIGHT, WIDTH, 3), np.uint8)


def film() -> np.ndarray:
    """A black first frame, then three shots (40, 30 and 35 frames): two hard cuts."""
    return np.concatenate([BLACK, shot(1, 40), shot(2, 30), shot(3, 35)])


def spans_of(path, **rules):
    found = find_shots(path, scan_clip(path), ShotRules(16, **rules))
    return [(s.start, s.end, s.what, s.kept) for s in found.spans], found


def write(folder, name, frames, fps=24):
    folder.mkdir(parents=True, exist_ok=True)
    write_mp4(folder / name, frames, fps)
    return folder / name


def test_a_black_lead_in_and_two_hard_cuts_are_three_shots_not_damage(tmp_path):
    clip = write(tmp_path / "footage" / "walk", "film.mp4", film())
    spans, found = spans_of(clip)
    assert spans == [(0, 0, "blank", False), (1, 40, "shot", True), (41, 70, "shot", True), (71, 105, "shot", True)]
    assert found.shots == 3 and found.problems == []
    assert "lead-in" in found.spans[0].reason

    # each shot a training clip of its own, its frames exactly the decoded clip's
    made = prepare_motion_clips(DATA, {"name": "walk"}, tmp_path / "train", 16, source_dir=tmp_path / "footage")
    assert [p.name for p in made] == ["film.f001-040.mkv", "film.f041-070.mkv", "film.f071-105.mkv"]
    decoded = read_video(clip)
    for path, (start, end) in zip(made, [(1, 40), (41, 70), (71, 105)]):
        np.testing.assert_array_equal(read_video(path), decoded[start:end + 1])


def test_a_cut_inside_a_window_is_refused_when_asked_and_only_the_longest_shot_kept(tmp_path):
    clip = write(tmp_path, "film.mp4", film())
    spans, _ = spans_of(clip, shots="longest")
    assert [(s, e) for s, e, what, kept in spans if kept] == [(1, 40)]
    _, found = spans_of(clip, shots="reject")
    assert found.problems == ["3 shots (cuts before frames 41, 71); data.shots = reject takes single-shot clips "
                              "only (split or longest train on each or the longest shot)"]


def test_a_fade_in_from_black_is_left_out_up_to_the_shots_own_brightness(tmp_path):
    picture = shot(4, 50)
    ramp = np.stack([(picture[0] * (k / 10)).astype(np.uint8) for k in range(10)])
    clip = write(tmp_path, "fade.mp4", np.concatenate([ramp, picture]))
    spans, found = spans_of(clip)
    # black while fewer than 0.2% of the pixels pass 24 levels (frame 1, at 10%, has its yellow
    # block at 25), then a fade until a frame is within 5% (+2 levels) of the shot's median
    # brightness: the full picture at frame 10
    assert spans == [(0, 0, "blank", False), (1, 9, "fade", False), (10, 59, "shot", True)]
    assert found.shots == 1 and found.problems == []


def test_a_one_frame_flash_is_left_out_and_the_shot_goes_on(tmp_path):
    frames = shot(5, 50)
    frames[25] = np.clip(frames[25].astype(int) + 100, 0, 255)
    spans, found = spans_of(write(tmp_path, "flash.mp4", frames))
    assert spans == [(0, 24, "shot", True), (25, 25, "flash", False), (26, 49, "shot", True)]
    assert found.shots == 1 and found.problems == []


def test_a_damaged_burst_inside_a_shot_is_refused_naming_its_frames(tmp_path):
    clip = write(tmp_path / "footage" / "walk", "burst.mp4", damage(shot(6, 50), [20, 21]))
    _, found = spans_of(clip)
    assert found.problems == ["damaged encode, a burst at frames 20-21 that changes part of the frame and comes "
                              "back (data.damaged_jump = 10.0)"]
    with pytest.raises(DataError, match=r"burst\.mp4: damaged encode, a burst at frames 20-21"):
        prepare_motion_clips(DATA, {"name": "walk"}, tmp_path / "train", 16, source_dir=tmp_path / "footage")
    assert not (tmp_path / "train").exists()
    # the film with its cuts, damaged the same way in its second shot: refused as well
    damaged_film = write(tmp_path, "film_damaged.mp4", damage(film(), [55, 56]))
    _, found = spans_of(damaged_film)
    assert found.problems == ["damaged encode, a burst at frames 55-56 that changes part of the frame and comes "
                              "back (data.damaged_jump = 10.0)"]
    assert spans_of(damaged_film, damaged_jump=0)[1].problems == []  # the check can be switched off


def test_a_shot_shorter_than_the_window_is_left_out(tmp_path):
    clip = write(tmp_path, "short.mp4", np.concatenate([shot(7, 40), shot(8, 10), shot(9, 40)]))
    spans, found = spans_of(clip)
    assert spans == [(0, 39, "shot", True), (40, 49, "shot", False), (50, 89, "shot", True)]
    assert found.spans[1].reason == "10 frames, fewer than the 16 of a training window (video.num_frames)"


def test_repeated_frames_inside_a_shot_are_damage_and_blank_ones_are_left_out(tmp_path):
    frames = shot(10, 40)
    frozen = np.concatenate([frames[:20], np.repeat(frames[20:21], 5, axis=0), frames[21:]])  # 4 copies
    _, found = spans_of(write(tmp_path, "frozen.mp4", frozen))
    assert found.problems == ["damaged, 4 consecutive repeated frames from frame 21 (data.damaged_run = 4)"]
    paired = np.concatenate([frames[:20], frames[19:20], frames[20:]])  # one repeated frame: normal
    assert spans_of(write(tmp_path, "paired.mp4", paired))[1].problems == []
    dip = frames.copy()
    dip[18:23] = 0  # a dip to black: no damage, the frames are left out
    spans, found = spans_of(write(tmp_path, "dip.mp4", dip))
    assert found.problems == [] and (18, 22, "blank", False) in spans


def test_a_motion_with_no_usable_shot_stops_with_every_clip_and_its_reason(tmp_path):
    folder = tmp_path / "footage" / "walk"
    write(folder, "tiny.mp4", shot(11, 12))
    write(folder, "dark.mp4", np.zeros((30, HEIGHT, WIDTH, 3), np.uint8))
    with pytest.raises(DataError) as error:
        prepare_motion_clips(DATA, {"name": "walk"}, tmp_path / "train", 16, source_dir=tmp_path / "footage")
    message = str(error.value)
    assert message.startswith("motion walk: no clip leaves a shot of at least 16 frames to train on")
    assert f"{folder / 'dark.mp4'}: 0 shot(s); 0-29 blank left out (blank or black frames (lead-in))" in message
    assert f"{folder / 'tiny.mp4'}: 1 shot(s); 0-11 shot left out (12 frames, fewer than the 16" in message
    assert not (tmp_path / "train").exists()


def speed(frames: np.ndarray) -> float:
    """Pixels a frame the yellow block moves (the slope of its left edge's x; H.264's colour
    subsampling moves edges in steps of 2)."""
    yellow = (np.abs(frames[:, 50].astype(int) - SUBJECT).max(-1) < 40)
    x = np.array([np.flatnonzero(row)[0] for row in yellow])
    return float(np.polyfit(np.arange(len(x)), x, 1)[0])


def test_clips_at_24_and_60_fps_teach_the_same_speed_with_train_fps(tmp_path):
    # one motion, 48 pixels a second, filmed at 24 and at 60 fps (2 s each)
    folder = tmp_path / "footage" / "walk"
    write(folder, "a24.mp4", shot(12, 48, speed=2.0, start=8), fps=24)
    write(folder, "b60.mp4", shot(12, 120, speed=0.8, start=8), fps=60)
    own = prepare_motion_clips(DATA, {"name": "walk"}, tmp_path / "own", 16, source_dir=tmp_path / "footage")
    speeds = [speed(read_video(path)) for path in own]
    assert speeds == [pytest.approx(2.0, abs=0.05), pytest.approx(0.8, abs=0.05)]  # each its own frames: 2.5x
    report = pd.read_csv(tmp_path / "own" / "clip_report.csv")
    assert list(report["fps"]) == [24.0, 60.0]

    same = prepare_motion_clips({**DATA, "train_fps": 24}, {"name": "walk"}, tmp_path / "same", 16,
                                source_dir=tmp_path / "footage")
    assert [p.name for p in same] == ["a24.mp4", "b60.f000-119.24fps.mkv"]
    resampled = read_video(same[1])
    assert len(resampled) == 48
    np.testing.assert_array_equal(resampled, read_video(folder / "b60.mp4")[np.floor(np.arange(48) * 2.5).astype(int)])
    assert speed(resampled) == pytest.approx(2.0, abs=0.05)


def test_resampled_frames_are_those_on_screen_at_each_tick():
    np.testing.assert_array_equal(resampled_indices(0, 9, 60, 24), [0, 2, 5, 7])
    np.testing.assert_array_equal(resampled_indices(10, 13, 24, 60), [10, 10, 10, 11, 11, 12, 12, 12, 13, 13])
    np.testing.assert_array_equal(resampled_indices(3, 6, 30, None), [3, 4, 5, 6])
    np.testing.assert_array_equal(resampled_indices(3, 6, 29.97, 29.97), [3, 4, 5, 6])


def test_no_training_window_crosses_a_shot_boundary(tmp_path):
    from t2v_core.training.data import TrainingSet
    from t2v_core.training.loop import _training_batch

    clip = write(tmp_path / "footage" / "walk", "film.mp4", film())
    made = prepare_motion_clips(DATA, {"name": "walk"}, tmp_path / "train", 16, source_dir=tmp_path / "footage")
    # each training clip's frames found in the clip (bit-exact copies), as the latents' values
    decoded = read_video(clip)
    keys = {hashlib.sha1(frame.tobytes()).hexdigest(): i for i, frame in enumerate(decoded)}
    latents = []
    for path in made:
        index = torch.tensor([keys[hashlib.sha1(f.tobytes()).hexdigest()] for f in read_video(path)], dtype=torch.float32)
        mean = index[None, None, :, None, None].expand(1, 1, -1, 1, 1)
        latents.append(torch.stack([mean, torch.zeros_like(mean)])[:, 0])
    data = TrainingSet(made, ["walk"] * len(made), latents, None, torch.zeros(len(made), 77, 8), torch.zeros(77, 8))
    shots = [range(1, 41), range(41, 71), range(71, 106)]
    rng = np.random.default_rng(0)
    for stride in (1, 4):
        for _ in range(300):
            x0, _, _, _ = _training_batch(data, rng, {"batch_size": 1, "random_flip": False, "frame_stride": stride},
                                          16, [], "cpu")
            frames = x0[0, 0, :, 0, 0].long().tolist()
            assert any(set(frames) <= set(s) for s in shots), frames
            assert frames == sorted(frames) and (stride > 1 or np.all(np.diff(frames) == 1))


def test_the_clip_report_says_what_was_kept_and_why_with_a_contact_sheet(tmp_path):
    folder = tmp_path / "footage" / "walk"
    write(folder, "film.mp4", film())
    flash = shot(5, 40)
    flash[20] = 255
    write(folder, "flash.mp4", flash)
    prepare_motion_clips(DATA, {"name": "walk"}, tmp_path / "train", 16, source_dir=tmp_path / "footage")
    report = pd.read_csv(tmp_path / "train" / "clip_report.csv", keep_default_na=False)
    assert list(report.columns) == ["clip", "width", "height", "fps", "frames", "shots", "start", "end", "what",
                                    "shot", "kept", "training_clip", "reason"]
    film_rows = report[report["clip"] == "film.mp4"]
    assert film_rows[["start", "end", "what", "kept", "training_clip"]].values.tolist() == [
        [0, 0, "blank", False, ""], [1, 40, "shot", True, "film.f001-040.mkv"],
        [41, 70, "shot", True, "film.f041-070.mkv"], [71, 105, "shot", True, "film.f071-105.mkv"]]
    assert set(film_rows["width"]) == {128} and set(film_rows["fps"]) == {24.0} and set(film_rows["shots"]) == {3}
    flash_rows = report[report["clip"] == "flash.mp4"]
    assert flash_rows[["start", "end", "what", "kept"]].values.tolist() == [
        [0, 19, "shot", True], [20, 20, "flash", False], [21, 39, "shot", True]]
    markdown = (tmp_path / "train" / "clip_report.md").read_text()
    assert "## film.mp4" in markdown and "128x96, 24.000 fps, 106 frames, 3 shot(s)" in markdown
    assert "| 20-20 | flash | 1 | – | a flash: the whole frame brightens" in markdown
    # the contact sheet: a row per kept shot (5), three frames each, the first frame of shot 2 in its place
    sheet = np.asarray(Image.open(tmp_path / "train" / "clip_report.png"))
    assert sheet.shape[0] == LABEL_HEIGHT + 5 * (96 + GAP)
    assert sorted(p.name for p in list_clips(tmp_path / "train")) == [
        "film.f001-040.mkv", "film.f041-070.mkv", "film.f071-105.mkv", "flash.f00-19.mkv", "flash.f21-39.mkv"]


def test_real_footage_single_shots_are_kept_whole_byte_for_byte(tmp_path):
    """LAMP-like clips (one shot, no lead-in): copied as they are, so the paper's numbers do not
    move; the real clips' own camera moves and noise are no cut."""
    folder = tmp_path / "footage" / "real"
    folder.mkdir(parents=True)
    for name in ("box.mp4", "cup.mp4", "vtest.avi"):
        (folder / name).symlink_to(shared_data("clips", name))
    made = prepare_motion_clips(DATA, {"name": "real"}, tmp_path / "train", 16, source_dir=tmp_path / "footage")
    assert [p.name for p in made] == ["box.mp4", "cup.mp4", "vtest.avi"]
    for path in made:
        assert path.read_bytes() == (folder / path.name).read_bytes()
    report = pd.read_csv(tmp_path / "train" / "clip_report.csv")
    assert report[["clip", "width", "height", "frames", "shots", "start", "end"]].values.tolist() == [
        ["box.mp4", 640, 480, 456, 1, 0, 455], ["cup.mp4", 640, 480, 217, 1, 0, 216],
        ["vtest.avi", 768, 576, 795, 1, 0, 794]]
    assert list(report["fps"]) == [29.966, 26.777, 10.0]


def test_real_footage_cut_together_is_split_at_its_cuts(tmp_path):
    box, cup = read_video(shared_data("clips", "box.mp4")), read_video(shared_data("clips", "cup.mp4"))
    excerpt = np.concatenate([np.zeros((3, *box.shape[1:]), np.uint8), box[:120], cup[:100], box[300:400]])
    spans, found = spans_of(write(tmp_path, "excerpt.mp4", excerpt, fps=30))
    assert spans == [(0, 2, "blank", False), (3, 122, "shot", True), (123, 222, "shot", True),
                     (223, 322, "shot", True)]
    assert found.problems == []


def test_a_damaged_real_encode_is_still_refused(tmp_path):
    source = shared_data("clips", "vtest.avi")
    data = bytearray(source.read_bytes())
    rng, start = np.random.default_rng(1), len(data) // 4
    for offset in [start + k * 7919 for k in range(5)]:
        data[offset:offset + 64] = rng.integers(0, 256, 64, dtype=np.uint8).tobytes()
    folder = tmp_path / "footage" / "walk"
    folder.mkdir(parents=True)
    (folder / "vtest_damaged.avi").write_bytes(bytes(data))
    with pytest.raises(DataError) as error:
        prepare_motion_clips(DATA, {"name": "walk"}, tmp_path / "train", 16, source_dir=tmp_path / "footage")
    message = str(error.value)
    assert (f"{folder / 'vtest_damaged.avi'}: damaged encode, sudden changes between frames 249->250 (9.0) where "
            "the shot's median change is 2.0 (data.damaged_jump = 10.0)") in message
    assert "the decoder reported" in message
    prepare_motion_clips({**DATA, "damaged_jump": 0}, {"name": "walk"}, tmp_path / "off", 16,
                         source_dir=tmp_path / "footage")  # the check can be switched off
