"""Results are written atomically, readable as the umask allows, and leave nothing behind when
the job writing them is killed."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from safetensors.torch import save_file

from t2v_core.atomic import atomic_dir, atomic_path
from t2v_core.models.prepare import PREPARED_FOR_FILE, models_dir_conflicts, prepare_model


def _modes(root):
    return {str(p.relative_to(root)): p.stat().st_mode & 0o777 for p in [root, *root.rglob("*")]}


def test_folders_and_safetensors_get_the_umasks_modes(tmp_path):
    umask = os.umask(0o022)
    try:
        with atomic_dir(tmp_path / "adapter") as work:
            (work / "sub").mkdir()
            save_file({"a": torch.zeros(2)}, work / "sub" / "model.safetensors")  # written 0600
        with atomic_path(tmp_path / "weights.safetensors") as tmp:
            save_file({"a": torch.zeros(2)}, tmp)
    finally:
        os.umask(umask)
    assert _modes(tmp_path / "adapter") == {".": 0o755, "sub": 0o755, "sub/model.safetensors": 0o644}
    assert (tmp_path / "weights.safetensors").stat().st_mode & 0o777 == 0o644
    # a stricter umask is respected
    umask = os.umask(0o077)
    try:
        with atomic_dir(tmp_path / "private") as work:
            (work / "x.json").write_text("{}")
    finally:
        os.umask(umask)
    assert _modes(tmp_path / "private") == {".": 0o700, "x.json": 0o600}


def test_prepared_models_are_readable_by_the_group(tmp_path):
    umask = os.umask(0o022)
    try:
        prepare_model("sam", tmp_path / "sam", {"source": "tiny", "seed": 0}, experiment="tiny")
    finally:
        os.umask(umask)
    modes = _modes(tmp_path / "sam")
    assert modes["sam_model.safetensors"] == 0o644 and modes["."] == 0o755
    assert all(mode & 0o044 == 0o044 for mode in modes.values())


def test_a_killed_job_leaves_no_temporary_file(tmp_path):
    out = tmp_path / "samples" / "seed0.mp4"
    script = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from t2v_core.atomic import atomic_path
        from t2v_core.runtime import setup_job_logging

        setup_job_logging({str(tmp_path / "job.log")!r})
        with atomic_path({str(out)!r}) as tmp:
            Path({str(tmp_path / "ready")!r}).touch()
            time.sleep(60)  # sampling
    """)
    job = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 60
    while not (tmp_path / "ready").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(out.parent.iterdir())  # the temporary file exists while the job runs
    job.send_signal(signal.SIGTERM)  # as Snakemake or SLURM stops a job
    assert job.wait(timeout=60) == 128 + signal.SIGTERM
    assert list(out.parent.iterdir()) == []


def test_leftovers_of_a_sigkilled_attempt_are_removed_by_the_next(tmp_path):
    stale = tmp_path / ".seed0.k3j9x_2a.mp4"  # what a SIGKILL leaves (mkstemp's name)
    stale.write_bytes(b"")
    other = tmp_path / ".seed1.k3j9x_2a.mp4"
    other.write_bytes(b"")
    with atomic_path(tmp_path / "seed0.mp4") as tmp:
        tmp.write_bytes(b"video")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".seed1.k3j9x_2a.mp4", "seed0.mp4"]


def test_models_of_another_experiment_with_other_settings_are_a_conflict(tmp_path):
    prepare_model("sam", tmp_path / "sam", {"source": "tiny", "seed": 0}, experiment="tiny")
    assert (tmp_path / "sam" / PREPARED_FOR_FILE).is_file()
    assert models_dir_conflicts(tmp_path, "tiny", {"sam": {"source": "tiny", "seed": 1}}) == []  # own edit
    assert models_dir_conflicts(tmp_path, "other", {"sam": {"source": "tiny", "seed": 0}}) == []  # shared
    conflicts = models_dir_conflicts(tmp_path, "demo", {"sam": {"source": "toy"}, "base": {"source": "toy"}})
    assert conflicts == [f"{tmp_path / 'sam'} was prepared by experiment 'tiny' from {{'seed': 0, 'source': "
                         f"'tiny'}}, this experiment 'demo' needs {{'source': 'toy'}}"]


def test_what_c_libraries_print_goes_to_the_jobs_log(tmp_path):
    """ffmpeg's decoder warnings (inside decord) are written to file descriptor 2, not through
    sys.stderr: they belong in the job's log, not in the console of the whole run."""
    script = textwrap.dedent(f"""
        import os, sys
        from t2v_core.runtime import setup_job_logging

        setup_job_logging({str(tmp_path / "job.log")!r})
        os.write(2, b"[h264 @ 0x0] decode_slice_header error\\n")
        print("from python", file=sys.stderr)
    """)
    job = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert job.returncode == 0 and job.stderr == ""
    assert (tmp_path / "job.log").read_text() == "[h264 @ 0x0] decode_slice_header error\nfrom python\n"


def test_a_jobs_objects_are_kept_from_the_garbage_collector_to_its_exit(tmp_path):
    """What a job imported, and what it made after (its models), is frozen out of the cyclic
    collector's view before the interpreter's final collection; the job's log is still complete
    and a file it left open is still flushed."""
    script = textwrap.dedent(f"""
        import atexit, gc, logging
        # registered before the job's set-up, so it runs after the set-up's exit handler
        atexit.register(lambda: open({str(tmp_path / "frozen")!r}, "w").write(str(gc.get_freeze_count())))
        from t2v_core.runtime import process_age, setup_job_logging

        setup_job_logging({str(tmp_path / "job.log")!r})
        at_set_up = gc.get_freeze_count()
        open({str(tmp_path / "at_set_up")!r}, "w").write(str(at_set_up))
        models = [[i] for i in range(100000)]  # made after the set-up: frozen only at exit
        left_open = open({str(tmp_path / "left_open")!r}, "w")
        left_open.write("written")
        logging.getLogger("job").info("started %.3f s ago", process_age())
    """)
    job = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert job.returncode == 0, job.stderr
    at_set_up, at_exit = int((tmp_path / "at_set_up").read_text()), int((tmp_path / "frozen").read_text())
    assert at_set_up > 1000  # the imports' objects
    assert at_exit >= at_set_up + 100000
    assert (tmp_path / "left_open").read_text() == "written"
    started = float((tmp_path / "job.log").read_text().split("started ")[1].split(" s ago")[0])
    assert 0 < started < 600


#: Each kind of product writer, as a job calls it: (what it writes, the statement).
WRITERS = {
    "table": ("table.csv", "import pandas as pd\nfrom t2v_core.atomic import atomic_path\n"
                           "with atomic_path(OUT) as tmp:\n    pd.DataFrame({'x': range(100000)}).to_csv(tmp)"),
    "masks": ("clip.npz", "import numpy as np\nfrom t2v_core.masks import save_masks\n"
                          "save_masks(OUT, np.random.default_rng(0).random((40, 64, 640)) > 0.5)"),
    "video": ("seed0.mp4", "import numpy as np\nfrom t2v_core.video_io import write_mp4\n"
                           "write_mp4(OUT, np.random.default_rng(0).integers(0, 256, (16, 256, 256, 3), dtype=np.uint8), 4)"),
    "adapter": ("adapter", "import torch\nfrom t2v_core.training.loop import save_trained\n"
                           "from safetensors.torch import save_file\n"
                           "save_trained(lambda d: save_file({'w': torch.randn(200000)}, f'{d}/w.safetensors'), OUT, {})"),
}


@pytest.mark.parametrize("kind", list(WRITERS))
def test_a_write_that_fails_keeps_the_previous_product_and_names_it(tmp_path, kind):
    """A full disk, simulated by a file-size limit (RLIMIT_FSIZE: the kernel refuses the write
    past 64 kB): nothing half-written under the product's name, the previous product in place,
    and an error that names it."""
    name, statement = WRITERS[kind]
    out = tmp_path / "results" / name
    script = f"OUT = {str(out)!r}\n{statement}\n"
    first = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    before = {p: p.read_bytes() for p in sorted(out.parent.rglob("*")) if p.is_file()}
    limited = textwrap.dedent("""
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails (EFBIG) instead of a signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
    """)
    failed = subprocess.run([sys.executable, "-c", limited + script], capture_output=True, text=True)
    assert failed.returncode != 0
    assert f"{out}: not written, the previous version (if any) is kept" in failed.stderr, failed.stderr[-2000:]
    after = {p: p.read_bytes() for p in sorted(out.parent.rglob("*")) if p.is_file()}
    assert after == before  # the previous product, and nothing beside it
