"""Writing results atomically (a temporary name, then a rename) and readable by the group.

Nothing half-written ever carries a final name. Some writers make private files (safetensors
writes 0600, ``tempfile`` makes 0600 files and 0700 folders); before a result gets its name
it gets the modes that the umask gives a plain ``open``, so that teammates on a shared cluster
can read it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import tempfile
from pathlib import Path


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def share_as_umask_allows(path: str | Path) -> None:
    """Files 0666 and folders 0777 less the umask, ``path`` and everything under it."""
    umask = _umask()
    path = Path(path)
    if path.is_file():
        os.chmod(path, 0o666 & ~umask)
        return
    os.chmod(path, 0o777 & ~umask)
    for root, dirs, files in os.walk(path):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o777 & ~umask)
        for name in files:
            os.chmod(os.path.join(root, name), 0o666 & ~umask)


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside ``path`` (same suffix); rename it to ``path`` on success.

    On error (a killed job's SIGTERM included, see runtime.setup_job_logging) the temporary
    file is removed, so no partial file ever carries the final name or is left behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a SIGKILL gives no chance to clean up: an earlier attempt's leftovers go now
    for stale in path.parent.glob(f".{glob.escape(path.stem)}.????????{glob.escape(path.suffix)}"):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        share_as_umask_allows(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def replace_dir(work: str | Path, out_dir: str | Path) -> None:
    """Give the finished folder ``work`` the name ``out_dir`` (replacing an older one) and the
    umask's modes."""
    work, out_dir = Path(work), Path(out_dir)
    share_as_umask_allows(work)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    work.rename(out_dir)


@contextlib.contextmanager
def atomic_dir(out_dir: str | Path):
    """A temporary sibling folder, renamed to ``out_dir`` when the block succeeds and removed
    when it fails, so that an interrupted download, training or checkpoint never leaves a
    folder that looks complete."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        yield work
        replace_dir(work, out_dir)
    finally:
        if work.exists():
            shutil.rmtree(work)
