"""The data stage: training clips per motion and one first-frame image per prompt.

Where a motion's clips come from with ``data.source: lamp`` (first match wins):
1. the motion's own ``source``: an HTTP(S) ``url`` of a video or an archive (with its
   ``sha256``), a Google Drive file or folder (``gdrive_id``), or a ``local_dir``;
2. ``data.local_dir``, a folder with one sub-folder per motion, filled by hand (Baidu Disk);
3. LAMP's whole few-shot set from its Google Drive folder (``data.gdrive_folder_id``).
First frames are then LAMP's benchmark PNGs by URL, checked against the manifest's sha256 sums.

Other ``data.source`` values are generated sources (:class:`GeneratedData`), which draw the
clips and first frames instead: ``synthetic`` (moving shapes, the tests) is built in, plugins
register more (:func:`register_data_source`; the demo's toy world is one).
"""

from __future__ import annotations

import logging
import shutil
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import quote, urlparse

from ..atomic import replace_dir
from ..download import download_file
from ..plugins import Registry, missing_registration
from .clip_report import CAPTIONS_FILE, prepare_training_shots
from .shots import ShotRules
from .synthetic import synthesize_first_frame, synthesize_motion_clips
from .validation import (
    CHECKSUM_FILE, VIDEO_SUFFIXES, DataError, list_clips, validate_first_frame, verify_clip_checksums,
    write_checksums,
)

log = logging.getLogger(__name__)
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
#: The data source that downloads: LAMP's few-shot clips and benchmark first frames.
LAMP_SOURCE = "lamp"


@dataclass(frozen=True)
class GeneratedData:
    """A data source that draws its clips and first frames (no download, no manifest).

    ``write_clips(out_dir, data, motion, fps)`` writes a motion's clips into the empty folder
    ``out_dir`` (and may add a ``captions.csv`` and ground-truth masks in ``ground_truth/``);
    ``write_first_frame(out_path, data, motion, prompt, height, width)`` writes one PNG. ``data``
    is the config's ``data`` block, ``motion`` what the data stage gets of a motion (name,
    subject, source).
    """

    name: str
    write_clips: Callable[..., None]
    write_first_frame: Callable[..., None]
    #: One sentence for the report: what the clips, first frames and prompts are.
    description: str = ""


GENERATED_SOURCES = Registry("data source")


def register_data_source(source: GeneratedData) -> None:
    if source.name == LAMP_SOURCE:
        raise ValueError(f"data source {source.name!r} is LAMP's, which downloads")
    GENERATED_SOURCES.register(source)


def data_source_names() -> list[str]:
    return [LAMP_SOURCE, *GENERATED_SOURCES.names()]


def generated_source(name: str) -> GeneratedData | None:
    """The generated source ``name``; None for LAMP's (downloaded) data."""
    if name == LAMP_SOURCE:
        return None
    if name not in GENERATED_SOURCES.names():
        raise ValueError(missing_registration("data source", name, data_source_names()))
    return GENERATED_SOURCES.get(name)


def _write_synthetic_clips(out_dir, data, motion, fps):
    height, width = data["clip_size"]
    synthesize_motion_clips(out_dir, motion["name"], motion["subject"], data["seed"], data["clips_per_motion"],
                            data["clip_frames"], height, width, fps)


def _write_synthetic_first_frame(out_path, data, motion, prompt, height, width):
    synthesize_first_frame(out_path, motion["name"], motion["subject"], prompt, data["seed"], height, width)


register_data_source(GeneratedData(
    "synthetic", _write_synthetic_clips, _write_synthetic_first_frame,
    description="Synthetic clips of moving shapes and drawn first frames (a test of the pipeline's code paths).",
))


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
    replace_dir(work, out_dir)


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
            replace_dir(work, out_dir)
            return
        fetched = Path(gdown.download(id=source["gdrive_id"], output=str(work) + "/", quiet=False))
    else:
        raise DataError(f"motion source {source}: neither url nor gdrive_id to download")
    if is_archive(fetched.name):
        extract_archive(fetched, work)
        fetched.unlink()
    elif fetched.parent != work:
        shutil.move(fetched, work / fetched.name)
    replace_dir(work, out_dir)


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


def _training_clips_from(folder: Path, clips: list[Path], out_dir: Path, rules: ShotRules, motion: str) -> list[Path]:
    """The shots of ``clips`` (in ``folder``) as ``motion``'s training clips in ``out_dir``, with
    the clip report and the clips' sha256 sums (the lines that pin them in the manifest),
    written whole or not at all."""
    work = _work_dir(out_dir)
    prepare_training_shots(folder, clips, work, rules, motion)
    write_checksums(clips, work / CHECKSUM_FILE)
    replace_dir(work, out_dir)
    return list_clips(out_dir)


def collect_motion_clips(source_dir: str | Path, motion: str, out_dir: str | Path, rules: ShotRules,
                         expected_sums: dict | None = None) -> list[Path]:
    """The training clips of ``motion`` from the clips found under ``source_dir``: their shots,
    as ``rules`` (the config's ``data`` block) choose them.

    With ``expected_sums`` (file name -> sha256, from the manifest) the clips must be exactly
    those files. Their sums are written to ``out_dir/clips.sha256``.
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
    return _training_clips_from(folder, clips, Path(out_dir), rules, motion)


def prepare_motion_clips(data: dict, motion: dict, out_dir, num_frames: int, source_dir=None,
                         fps: int = 8, expected_sums: dict | None = None) -> list[Path]:
    """The training clips of one motion in ``out_dir``: the shots of the clips a generated source
    draws, or of those found under ``source_dir``; ``num_frames`` is the training window."""
    rules = ShotRules.from_config(data, num_frames)
    generated = generated_source(data["source"])
    if generated is None:
        return collect_motion_clips(source_dir, motion["name"], out_dir, rules, expected_sums)
    out_dir = Path(out_dir)
    drawn = _work_dir(out_dir.with_name(f"{out_dir.name}.drawn"))
    try:
        generated.write_clips(drawn, data, motion, fps)
        return _training_clips_from(drawn, list_clips(drawn), out_dir, rules, motion["name"])
    finally:
        shutil.rmtree(drawn, ignore_errors=True)


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


def benchmark_file_name(prompt: str) -> str:
    """LAMP's benchmark file name of a prompt: spaces read as underscores."""
    return prompt.replace(" ", "_") + ".png"


def benchmark_key(motion: str, prompt: str) -> str:
    """A first frame's key in the manifest: ``<motion>/<prompt with _ for spaces>.png``."""
    return f"{motion}/{benchmark_file_name(prompt)}"


def prepare_first_frame(data: dict, motion: dict, prompt: str, out_path, height: int, width: int,
                        sha256: str | None = None) -> None:
    """The first frame of ``prompt``: LAMP's benchmark PNG (checked against ``sha256``), or the
    generated source's."""
    generated = generated_source(data["source"])
    if generated is not None:
        generated.write_first_frame(out_path, data, motion, prompt, height, width)
    else:
        url = f"{data['benchmark_url'].rstrip('/')}/{quote(motion['name'])}/{quote(benchmark_file_name(prompt))}"
        if sha256 is None:
            log.warning("%s: no sha256 in the data manifest; the download is not verified", url)
        download_file(url, out_path, sha256=sha256)
    # checked here, in the data stage, not hours later when the fine-tuned models sample
    try:
        validate_first_frame(out_path, height, width)
    except DataError:
        Path(out_path).unlink()
        raise
