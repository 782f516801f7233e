"""The data stage: training clips per motion and one first-frame image per prompt.

Where a motion's clips come from (first match wins):
1. the motion's own ``source``: an HTTP(S) ``url`` of a video or an archive (with its
   ``sha256``), a Google Drive file or folder (``gdrive_id``), or a ``local_dir``;
2. ``data.local_dir``, a folder with one sub-folder per motion, filled by hand (Baidu Disk);
3. LAMP's whole few-shot set from its Google Drive folder (``data.gdrive_folder_id``).
``data.source: synthetic`` makes moving shapes instead (the tests), and ``data.source: toy``
the toy world's clips (the demo; :mod:`t2v_core.toy.world`), with their ground-truth masks kept
aside in ``ground_truth/`` for checking SAM's. First frames are LAMP's benchmark PNGs by URL,
checked against the manifest's sha256 sums, or drawn from the prompt (synthetic, toy).
"""

from __future__ import annotations

import logging
import shutil
import tarfile
import zipfile
from pathlib import Path
from urllib.parse import quote, urlparse

from ..config import benchmark_file_name
from ..download import download_file
from ..video_io import write_mp4, write_png
from .synthetic import synthesize_first_frame, synthesize_motion_clips
from .validation import (
    CHECKSUM_FILE, VIDEO_SUFFIXES, DataError, list_clips, validate_clips, verify_clip_checksums,
    write_checksums,
)

log = logging.getLogger(__name__)
#: Optional per-clip captions of a motion's clips (the toy world writes one); without it the
#: motion's ``train_prompt`` captions every clip, as in LAMP.
CAPTIONS_FILE = "captions.csv"
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


def _replace_dir(work: Path, out_dir: Path) -> None:
    """Give the finished ``work`` folder its final name (nothing half-written ever has it)."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    work.rename(out_dir)


def _work_dir(out_dir: Path, fresh: bool = True) -> Path:
    work = out_dir.with_name(f".{out_dir.name}.part")
    if fresh:
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    return work


def download_lamp_fewshot(folder_id: str, out_dir: str | Path) -> None:
    """All of LAMP's few-shot set (one sub-folder per motion) from its Google Drive folder."""
    import gdown

    out_dir = Path(out_dir)
    work = _work_dir(out_dir, fresh=False)  # kept between attempts: gdown skips finished files
    files = gdown.download_folder(id=folder_id, output=str(work), quiet=False, resume=True)
    if not files:
        raise DataError(f"Google Drive folder {folder_id}: nothing downloaded")
    _replace_dir(work, out_dir)


def is_archive(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def extract_archive(archive: Path, dest: Path) -> None:
    """Unpack a zip or tar archive into ``dest``; members that would land outside are refused."""
    try:
        if archive.name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as bundle:
                for member in bundle.namelist():
                    if not (dest / member).resolve().is_relative_to(dest.resolve()):
                        raise DataError(f"{archive}: member {member!r} would be written outside {dest}")
                bundle.extractall(dest)
        else:
            with tarfile.open(archive) as bundle:
                bundle.extractall(dest, filter="data")
    except (zipfile.BadZipFile, tarfile.TarError) as error:
        raise DataError(f"{archive}: not a readable archive ({error})") from error


def download_motion_source(source: dict, out_dir: str | Path, retries: int = 5) -> None:
    """One motion's clips from its own ``url`` or ``gdrive_id`` into ``out_dir`` (archives unpacked)."""
    out_dir = Path(out_dir)
    work = _work_dir(out_dir)
    if source.get("url"):
        name = Path(urlparse(source["url"]).path).name or "download"
        fetched = download_file(source["url"], work.with_name(f".{out_dir.name}.{name}"),
                                sha256=source.get("sha256"), retries=retries)
    elif source.get("gdrive_id"):
        import gdown

        if source.get("gdrive_kind", "folder") == "folder":
            if not gdown.download_folder(id=source["gdrive_id"], output=str(work), quiet=False):
                raise DataError(f"Google Drive folder {source['gdrive_id']}: nothing downloaded")
            _replace_dir(work, out_dir)
            return
        fetched = Path(gdown.download(id=source["gdrive_id"], output=str(work) + "/", quiet=False))
    else:
        raise DataError(f"motion source {source}: neither url nor gdrive_id to download")
    if is_archive(fetched.name):
        extract_archive(fetched, work)
        fetched.unlink()
    elif fetched.parent != work:
        shutil.move(fetched, work / fetched.name)
    _replace_dir(work, out_dir)


def find_motion_folder(root: str | Path, motion: str) -> Path:
    """The folder of ``motion``'s clips: ``root/<motion>`` or a ``<motion>`` folder at any depth
    (e.g. root/LAMP/horse_run); ``root`` itself when it holds the videos directly."""
    root = Path(root)
    for candidate in [root / motion, *sorted(root.rglob(motion))]:
        if candidate.is_dir():
            return candidate
    if root.is_dir() and list_clips(root):
        return root
    raise DataError(f"{root}: no folder named {motion!r} with the motion's clips, and no videos in it")


def collect_motion_clips(source_dir: str | Path, motion: str, out_dir: str | Path, min_frames: int,
                         damaged_run: int = 0, expected_sums: dict | None = None) -> list[Path]:
    """Validate the clips of ``motion`` found under ``source_dir`` and copy them to ``out_dir``.

    With ``expected_sums`` (file name -> sha256, from the manifest) the clips must be exactly
    those files. The sums of the accepted clips are written to ``out_dir/clips.sha256``.
    """
    folder = find_motion_folder(source_dir, motion)
    clips = list_clips(folder)
    if not clips:
        raise DataError(f"{folder}: no video files ({', '.join(VIDEO_SUFFIXES)})")
    if expected_sums:
        verify_clip_checksums(clips, expected_sums, str(folder))
    else:
        log.warning("%s: no sha256 sums for motion %r in the data manifest; recording them in %s",
                    folder, motion, CHECKSUM_FILE)
    validate_clips(clips, min_frames, damaged_run)
    out_dir = Path(out_dir)
    work = _work_dir(out_dir)
    for clip in clips:
        shutil.copy2(clip, work / clip.name)
    write_checksums(list_clips(work), work / CHECKSUM_FILE)
    _replace_dir(work, out_dir)
    return list_clips(out_dir)


def prepare_motion_clips(data: dict, motion: dict, out_dir, min_frames: int, source_dir=None,
                         fps: int = 8, expected_sums: dict | None = None) -> list[Path]:
    """The training clips of one motion in ``out_dir`` (synthetic, or validated copies)."""
    if data["source"] in ("synthetic", "toy"):
        out_dir = Path(out_dir)
        work = _work_dir(out_dir)
        height, width = data["clip_size"]
        if data["source"] == "toy":
            from ..toy.world import toy_motion

            write_toy_clips(work, toy_motion(motion["name"]), data["seed"], data["clips_per_motion"],
                            data["clip_frames"], height, fps)
        else:
            synthesize_motion_clips(work, motion["name"], motion["subject"], data["seed"],
                                    data["clips_per_motion"], data["clip_frames"], height, width, fps)
        validate_clips(list_clips(work), min_frames, data["damaged_run"])
        _replace_dir(work, out_dir)
        return list_clips(out_dir)
    return collect_motion_clips(source_dir, motion["name"], out_dir, min_frames, data["damaged_run"],
                                expected_sums)


def write_toy_clips(out_dir: Path, motion: str, seed: int, count: int, num_frames: int, size: int,
                    fps: int) -> None:
    """``count`` toy clips of ``motion`` as mp4, their ground-truth masks in ``ground_truth/``
    (for checking the SAM masks, never used in their place) and ``captions.csv``."""
    from ..masks import GROUND_TRUTH_DIR, save_masks
    from ..toy.world import caption, motion_clips

    (out_dir / GROUND_TRUTH_DIR).mkdir(parents=True, exist_ok=True)
    rows = ["clip,caption"]
    for index, (subject, frames, masks) in enumerate(motion_clips(motion, count, num_frames, size, seed)):
        write_mp4(out_dir / f"clip_{index:03d}.mp4", frames, fps=fps)
        save_masks(out_dir / GROUND_TRUTH_DIR / f"clip_{index:03d}.npz", masks)
        rows.append(f"clip_{index:03d},{caption(subject, motion)}")
    (out_dir / CAPTIONS_FILE).write_text("\n".join(rows) + "\n")


def clip_captions(clips_dir: str | Path, clips: list[Path]) -> list[str] | None:
    """One caption per clip from ``clips_dir/captions.csv`` (columns clip, caption; the clip
    by its file stem), or None when the folder has none; a clip without one is an error."""
    import pandas as pd

    path = Path(clips_dir) / CAPTIONS_FILE
    if not path.exists():
        return None
    table = pd.read_csv(path, dtype=str)
    if list(table.columns) != ["clip", "caption"]:
        raise DataError(f"{path}: expected the columns clip,caption; found {','.join(table.columns)}")
    captions = dict(zip(table["clip"], table["caption"]))
    missing = [clip.stem for clip in clips if not isinstance(captions.get(clip.stem), str)]
    if missing:
        raise DataError(f"{path}: no caption for clips {', '.join(missing)}")
    return [captions[clip.stem] for clip in clips]


def benchmark_key(motion: str, prompt: str) -> str:
    """A first frame's key in the manifest: ``<motion>/<prompt with _ for spaces>.png``."""
    return f"{motion}/{benchmark_file_name(prompt)}"


def prepare_first_frame(data: dict, motion: dict, prompt: str, out_path, height: int, width: int,
                        sha256: str | None = None) -> None:
    """The first frame of ``prompt``: LAMP's benchmark PNG (checked against ``sha256``), or a
    synthetic one."""
    if data["source"] == "synthetic":
        synthesize_first_frame(out_path, motion["name"], motion["subject"], prompt, data["seed"], height, width)
        return
    if data["source"] == "toy":
        from ..toy.world import first_frame

        write_png(out_path, first_frame(prompt, height, data["seed"]))
        return
    url = f"{data['benchmark_url'].rstrip('/')}/{quote(motion['name'])}/{quote(benchmark_file_name(prompt))}"
    if sha256 is None:
        log.warning("%s: no sha256 in the data manifest; the download is not verified", url)
    download_file(url, out_path, sha256=sha256)
