"""Qualitative grids: every method's video of one prompt side by side, and contact sheets."""

from __future__ import annotations

import logging

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from t2v_core.video_io import read_video, write_gif, write_mp4, write_png

log = logging.getLogger(__name__)

LABEL_HEIGHT = 28  # band above each column of a grid, and above the frames of a contact sheet
LABEL_WIDTH = 112  # column left of each row of a contact sheet
GAP = 4  # dark pixels between tiles
BACKGROUND = (24, 24, 24)
TEXT = (255, 255, 255)
FONT_SIZES = (16, 14, 13, 12, 11, 10, 9, 8)


def _font(size: int):
    try:  # Pillow >= 10.1 with FreeType: a scalable font; else the fixed bitmap one
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):
        return ImageFont.load_default()


def _wrap(draw, text: str, font, width: int) -> list[str]:
    """Greedy wrap of ``text`` at ``width`` pixels, after spaces and hyphens."""
    lines: list[str] = []
    for word in text.replace("-", "-\n").split():
        joined = f"{lines[-1]}{'' if lines[-1].endswith('-') else ' '}{word}" if lines else word
        if lines and draw.textlength(joined, font=font) <= width:
            lines[-1] = joined
        else:
            lines.append(word)
    return lines or [""]


def _labels(texts: list[str], width: int, height: int) -> list[np.ndarray]:
    """White texts centred on dark (height, width, 3) bands, at the largest size all fit at."""
    draw = ImageDraw.Draw(Image.new("RGB", (width, height)))
    for size in FONT_SIZES:
        font = _font(size)
        top, bottom = font.getbbox("Ag")[1::2]
        line_height = bottom - top + 2
        wrapped = [_wrap(draw, text, font, width - 4) for text in texts]
        lines = [line for text_lines in wrapped for line in text_lines]
        tallest = max(map(len, wrapped)) * line_height
        if max(draw.textlength(x, font=font) for x in lines) <= width - 4 and tallest <= height:
            break
    bands = []
    for text_lines in wrapped:
        image = Image.new("RGB", (width, height), BACKGROUND)
        draw, y = ImageDraw.Draw(image), (height - line_height * len(text_lines)) / 2
        for line in text_lines:
            x = (width - draw.textlength(line, font=font)) / 2
            draw.text((x, y - top), line, fill=TEXT, font=font)
            y += line_height
        bands.append(np.asarray(image))
    return bands


def _harmonise(videos: list[np.ndarray], labels: list[str]) -> np.ndarray:
    """Videos as one (M, F, H, W, 3) uint8 array: resized to the first one's size (made even for
    H.264), shorter ones padded to the longest by repeating their last frame."""
    if not videos or len(videos) != len(labels):
        raise ValueError(f"need one label per video: {len(videos)} videos, {len(labels)} labels")
    height, width = (size + size % 2 for size in np.asarray(videos[0]).shape[1:3])
    frames = max(len(video) for video in videos)
    out = []
    for video in videos:
        video = np.asarray(video, dtype=np.uint8)
        if video.shape[1:3] != (height, width):
            video = np.stack([np.array(Image.fromarray(f).resize((width, height))) for f in video])
        if len(video) < frames:
            video = np.concatenate([video, np.repeat(video[-1:], frames - len(video), axis=0)])
        out.append(video)
    return np.stack(out)


def side_by_side(videos: list[np.ndarray], labels: list[str]) -> np.ndarray:
    """One video (F, LABEL_HEIGHT + H, M*W + (M-1)*GAP, 3) uint8 of M videos (F, H, W, 3).

    Video i is column i, starting at x = i*(W+GAP), under a dark band of LABEL_HEIGHT pixels
    with its label in white. Videos of another frame size are resized to the first one's (odd
    sizes rounded up to even); shorter ones are padded by repeating their last frame."""
    stack = _harmonise(videos, labels)
    count, frames, height, width, _ = stack.shape
    shape = (frames, LABEL_HEIGHT + height, count * width + (count - 1) * GAP, 3)
    grid = np.full(shape, BACKGROUND, np.uint8)
    for i, (video, band) in enumerate(zip(stack, _labels(labels, width, LABEL_HEIGHT))):
        x = i * (width + GAP)
        grid[:, :LABEL_HEIGHT, x : x + width] = band
        grid[:, LABEL_HEIGHT:, x : x + width] = video
    return grid


def frame_picks(frames: int, frames_per_row: int) -> np.ndarray:
    """Indices of ``frames_per_row`` evenly spaced frames, first and last included."""
    return np.unique(np.linspace(0, frames - 1, min(frames_per_row, frames)).round().astype(int))


def contact_sheet(videos: list[np.ndarray], labels: list[str], frames_per_row=8,
                  column_labels: list[str] | None = None) -> np.ndarray:
    """One image (H', W', 3) uint8: video i is row i, its evenly picked frames the columns.

    Layout: a header band of LABEL_HEIGHT pixels naming the frames (``column_labels``, else
    "frame <n>"); row i at
    y = LABEL_HEIGHT + i*(H+GAP), its label in a LABEL_WIDTH column on the left, frame j at
    x = LABEL_WIDTH + GAP + j*(W+GAP). Sizes and frame counts harmonised as in side_by_side."""
    stack = _harmonise(videos, labels)
    count, frames, height, width, _ = stack.shape
    picks = frame_picks(frames, frames_per_row)
    shape = (LABEL_HEIGHT + count * (height + GAP), LABEL_WIDTH + len(picks) * (width + GAP), 3)
    sheet = np.full(shape, BACKGROUND, np.uint8)
    xs = [LABEL_WIDTH + GAP + j * (width + GAP) for j in range(len(picks))]
    headers = column_labels or [f"frame {f + 1}" for f in picks]
    for x, header in zip(xs, _labels(headers, width, LABEL_HEIGHT)):
        sheet[:LABEL_HEIGHT, x : x + width] = header
    for i, (video, band) in enumerate(zip(stack, _labels(labels, LABEL_WIDTH, height))):
        y = LABEL_HEIGHT + i * (height + GAP)
        sheet[y : y + height, :LABEL_WIDTH] = band
        for x, frame in zip(xs, picks):
            sheet[y : y + height, x : x + width] = video[frame]
    return sheet


def write_prompt_grid(video_paths: dict[str, str], out_mp4, out_gif, fps: int) -> None:
    """Read the videos ({label: path}, left to right) and write their grid as mp4 and GIF."""
    grid = side_by_side([read_video(p) for p in video_paths.values()], list(video_paths))
    log.info("grid of %s: %s frames of %sx%s", list(video_paths), *grid.shape[:3])
    write_mp4(out_mp4, grid, fps)
    write_gif(out_gif, grid, fps)


def write_contact_sheet(video_paths: dict[str, str], out_png, frames: int = 8) -> None:
    """Read the videos ({label: path}, top to bottom) and write their contact sheet as PNG."""
    sheet = contact_sheet([read_video(p) for p in video_paths.values()], list(video_paths), frames)
    log.info("contact sheet of %s: %sx%s", list(video_paths), *sheet.shape[:2])
    write_png(out_png, sheet)


def grid_targets(prompts, seed, sheet_prompts, grid_pattern: str, sheet_pattern: str) -> list:
    """The grid of every prompt at ``seed``, and the contact sheets of those ``sheet_prompts``
    (exact texts) that ``prompts`` (rows with motion, prompt_id, prompt) has; when it has none
    of them, the first prompt's. Patterns have {motion}, {prompt_id} (and {seed}) fields."""
    sheets = [p for p in prompts if p["prompt"] in set(sheet_prompts)] or prompts[:1]
    grids = [grid_pattern.format(**p, seed=seed) for p in prompts]
    return grids + [sheet_pattern.format(**p) for p in sheets]
