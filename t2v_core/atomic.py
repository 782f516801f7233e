"""Writing results atomically (a temporary name, then a rename) and readable by the group.

Nothing half-written ever carries a final name. Some writers make private files (safetensors
writes 0600, ``tempfile`` makes 0600 files and 0700 folders); before a result gets its name
it gets the modes that the umask gives a plain ``open``, so that teammates on a shared cluster
can read it.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import glob
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

#: Fault injection for the tests' fault matrix (tests/test_faults.py), unset in every real run:
#: a write whose final path (made absolute) matches this glob stops just before its rename,
#: writes that path to the file that STALL_MARKER_ENV names, and waits to be killed: a job
#: caught in its middle.
STALL_ENV = "T2V_CORE_STALL_AT"
STALL_MARKER_ENV = "T2V_CORE_STALL_MARKER"


def _stall_if_asked(path: Path) -> None:
    pattern = os.environ.get(STALL_ENV)
    if pattern and fnmatch.fnmatch(os.path.abspath(path), pattern):
        Path(os.environ[STALL_MARKER_ENV]).write_text(os.path.abspath(path))
        while True:
            time.sleep(1)


#: How libraries that write through their own code (safetensors' Rust, ffmpeg) report a
#: failed write in a message rather than as an OSError.
_IO_FAILURE = re.compile(r"\(os error \d+\)|No space left on device|File too large|Disk quota exceeded")


def _naming(error: BaseException, path: Path) -> BaseException:
    """A failed write (a full disk, a file-size limit) as an OSError that names the product it
    was writing, not only the temporary file beside it; other errors as they are."""
    io_failure = isinstance(error, OSError) and not isinstance(error, FileNotFoundError)
    if not (io_failure or (isinstance(error, Exception) and _IO_FAILURE.search(str(error)))):
        return error
    if str(path) in str(error):
        return error
    reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return OSError(getattr(error, "errno", None) or errno.EIO,
                   f"{path}: not written, the previous version (if any) is kept ({reason})")


def _raise_naming(error: BaseException, path: Path):
    """Re-raise ``error`` from inside its ``except`` block, as :func:`_naming` gives it."""
    named = _naming(error, path)
    if named is error:
        raise error
    raise named from error


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
        _stall_if_asked(path)
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        _raise_naming(error, path)


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
    # a SIGKILL gives no chance to clean up: an earlier attempt's leftovers go now
    for stale in out_dir.parent.glob(f".{glob.escape(out_dir.name)}.????????"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        yield work
        _stall_if_asked(out_dir)
        replace_dir(work, out_dir)
    except BaseException as error:
        _raise_naming(error, out_dir)
    finally:
        if work.exists():
            shutil.rmtree(work)
