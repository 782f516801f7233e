"""Reading and writing videos and images, always atomically (temporary name, then rename)."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
from PIL import Image

from .atomic import atomic_path


def iter_frames(path: str | Path):
    """The frames of a video, uint8 (H, W, 3), decoded in order, one after the other (seeking
    reads of some AVIs are not frame-accurate; a sequential decode is what every player shows).
    decord first; ffmpeg (imageio) when decord cannot copy the frames out, which happens for
    some frame widths (decord 0.6 pads rows to an alignment it then refuses to copy)."""
    import decord

    reader = decord.VideoReader(str(path), ctx=decord.cpu(0))
    length = len(reader)
    try:
        first = reader.next().asnumpy()
    except decord.DECORDError:
        first = None
    # for those widths decord's sequential reads return the padded rows as a 4th "channel"
    if first is None or first.ndim != 3 or first.shape[2] != 3:
        import imageio.v2 as imageio

        with imageio.get_reader(str(path), format="FFMPEG") as ffmpeg:
            yield from ffmpeg
        return
    yield first
    for _ in range(length - 1):
        yield reader.next().asnumpy()


def read_video(path: str | Path, indices=None) -> np.ndarray:
    """Frames of a video as uint8 array (F, H, W, 3): all of them, decoded in order (see
    :func:`iter_frames`), unless ``indices`` are given."""
    if indices is None:
        return np.stack(list(iter_frames(path)))
    import decord

    reader = decord.VideoReader(str(path), ctx=decord.cpu(0))
    indices = list(indices)
    try:
        return reader.get_batch(indices).asnumpy()
    except decord.DECORDError:
        frames = list(iter_frames(path))
        return np.stack([frames[i] for i in indices])


def video_length(path: str | Path) -> int:
    import decord

    return len(decord.VideoReader(str(path), ctx=decord.cpu(0)))


def _check_written(path: Path, frames: int) -> None:
    """ffmpeg that cannot write (a full disk) ends a truncated file without imageio raising: a
    video is read back before it takes the product's name."""
    try:
        written = video_length(path)
    except Exception as error:  # decord's DECORDError: no index (moov atom) at all
        raise OSError(errno.EIO, f"ffmpeg wrote an unreadable video ({str(error).splitlines()[0]})") from error
    if written != frames:
        raise OSError(errno.EIO, f"ffmpeg wrote {written} of {frames} frames")


def write_mp4(path: str | Path, frames: np.ndarray, fps: int) -> None:
    """Write uint8 frames (F, H, W, 3) as H.264 mp4 (even sizes required by yuv420p)."""
    import imageio.v2 as imageio

    frames = np.asarray(frames, dtype=np.uint8)
    with atomic_path(path) as tmp:
        writer = imageio.get_writer(
            tmp, fps=fps, codec="libx264", quality=9, macro_block_size=1,
            ffmpeg_log_level="error",
        )
        try:
            for frame in frames:
                writer.append_data(frame)
        finally:
            writer.close()
        _check_written(tmp, len(frames))


def write_lossless(path: str | Path, frames, fps: float) -> int:
    """Write uint8 frames (an iterable of (H, W, 3)) losslessly (FFV1 in Matroska: decoded, they
    are the frames given, bit for bit); returns how many. Read back before it takes its name."""
    import imageio.v2 as imageio

    count = 0
    with atomic_path(path) as tmp:
        writer = imageio.get_writer(tmp, format="FFMPEG", fps=fps, codec="ffv1", pixelformat="bgr0",
                                    macro_block_size=1, ffmpeg_log_level="error")
        try:
            for frame in frames:
                writer.append_data(np.asarray(frame, dtype=np.uint8))
                count += 1
        finally:
            writer.close()
        _check_written(tmp, count)
    return count


def write_gif(path: str | Path, frames: np.ndarray, fps: int) -> None:
    """uint8 frames (F, H, W, 3) as a looping GIF, each frame with its own 256-colour palette.

    The palettes come from PIL's fast octree quantizer: its default (median cut) took 0.2-0.5 s
    per 320x512 frame, up to 8 s per video, more than sampling the video on a GPU; the octree
    one takes ~10 ms and its frames are within a level of the median cut's on average."""
    images = [Image.fromarray(np.asarray(f, dtype=np.uint8)).quantize(256, method=Image.Quantize.FASTOCTREE)
              for f in frames]
    with atomic_path(path) as tmp:
        images[0].save(
            tmp, format="GIF", save_all=True, append_images=images[1:],
            duration=int(1000 / fps), loop=0,
        )


def write_png(path: str | Path, image: np.ndarray | Image.Image) -> None:
    if not isinstance(image, Image.Image):
        image = Image.fromarray(np.asarray(image, dtype=np.uint8))
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def read_image(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """RGB uint8 (H, W, 3); resized to ``size`` = (height, width) when given."""
    image = Image.open(path).convert("RGB")
    if size is not None and image.size != (size[1], size[0]):
        image = image.resize((size[1], size[0]), Image.BICUBIC)
    return np.asarray(image)
