"""Nothing lost when a job is killed: the fault matrix.

For each stage with real work, a run of the tests' config is interrupted in the middle of that
stage's job by SIGTERM (what SLURM sends at a time limit), SIGINT (Ctrl-C) and SIGKILL (the OOM
killer, a lost node), both in a plain run (the stage's product missing) and in a --forcerun of
the stage; then `--unlock` where Snakemake asks for it, and `all` again. Every product must be
there and equal, byte for byte, to those of an uninterrupted run.

The tests' config is cut to one motion, one prompt and Ours (Latents), the method whose jobs
cover every stage (models, clips and first frames, masks, a fine-tuning with checkpoints,
sampling, evaluation, aggregation), so that the 36 interrupted runs fit the suite. The job is
caught in its middle by the atomic writers' fault injection (t2v_core.atomic.STALL_ENV): it
stops before renaming one of its writes, the work before it done, nothing of it committed.
"""

from __future__ import annotations

import filecmp
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import copy_workflow
from t2v_core.atomic import STALL_ENV, STALL_MARKER_ENV

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
RESULTS = "results/faults"
CONFIG = ["--configfile", "config/tiny.yaml", "faults.yaml"]
OVERLAY = {
    "experiment": "faults",
    "models": {"dir": f"{RESULTS}/models"},
    "motions": [{"name": "shape_right", "subject": "square", "prompts": ["a red square moves to the right"]}],
    "methods": ["ours_latents"],
    "finetune": {"steps": 9, "checkpoint_every": 3},
    "evaluation": {"metrics": ["frame_steadiness"]},
}
#: stage -> (its product, the write its job is caught in: a glob of the final path)
STAGES = {
    "prepare": (f"{RESULTS}/models/clip", "*/models/clip"),
    "masks": (f"{RESULTS}/masks/shape_right", "*/masks/.shape_right.*/*.npz"),
    # after the checkpoint of step 3, while writing step 6's
    "finetune": (f"{RESULTS}/finetune/ours/shape_right/adapter", "*/checkpoints/step_6"),
    "sample": (f"{RESULTS}/samples/ours_latents/shape_right", "*/.shape_right.*/*/seed1.mp4"),
    "evaluate": (f"{RESULTS}/metrics/ours_latents.csv", f"*/{RESULTS}/metrics/ours_latents.csv"),
    "aggregate": (f"{RESULTS}/table.csv", "*/plots/metrics.png"),
}
SIGNALS = {"SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT, "SIGKILL": signal.SIGKILL}
#: Products that differ between two uninterrupted runs too: the disk usage counts the logs and
#: benchmark files, whose sizes vary with what was printed and measured.
NOT_DETERMINISTIC = {"disk_usage.csv", "disk_usage.md"}


def snakemake(workdir: Path, *args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([*SNAKEMAKE, *args], cwd=workdir, capture_output=True, text=True, env=env)


def products(workdir: Path) -> dict[str, Path]:
    """Every file a run keeps (its results less logs and benchmarks), by relative path."""
    root = workdir / RESULTS
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file()
            and p.relative_to(root).parts[0] not in ("logs", "benchmarks")}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run."""
    workdir = copy_workflow(tmp_path_factory.mktemp("reference"))
    (workdir / "faults.yaml").write_text(yaml.safe_dump(OVERLAY))
    result = snakemake(workdir, "all", "--cores", "2", *CONFIG)
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir


def interrupt(workdir: Path, args: list[str], stall_at: str, signum: int, timeout: float = 300) -> str:
    """Run snakemake until one of its jobs reaches the write ``stall_at``, then send ``signum``
    to Snakemake and its jobs (their process group, as a terminal or a batch system does); the
    path of the write that was caught."""
    marker = workdir / "stalled"
    env = {**os.environ, STALL_ENV: stall_at, STALL_MARKER_ENV: str(marker)}
    process = subprocess.Popen([*SNAKEMAKE, *args], cwd=workdir, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while not marker.exists():
            assert process.poll() is None, "snakemake ended before its job reached the write"
            assert time.monotonic() < deadline, "timed out waiting for the job to reach the write"
            time.sleep(0.05)
        os.killpg(process.pid, signum)
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        # nothing of the interrupted run may go on (a job orphaned by its Snakemake)
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return marker.read_text()


def recover(workdir: Path) -> tuple[str, bool]:
    """`--unlock` where Snakemake asks for it, then `all`: (the run's log, whether it unlocked)."""
    unlocked = False
    result = snakemake(workdir, "all", "--cores", "2", *CONFIG)
    if result.returncode != 0 and "cannot be locked" in result.stderr:
        assert snakemake(workdir, "--unlock", *CONFIG).returncode == 0
        unlocked = True
        result = snakemake(workdir, "all", "--cores", "2", *CONFIG)
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stderr, unlocked


def kill_and_recover(reference: Path, tmp_path: Path, stage: str, signame: str, mode: str) -> None:
    """One cell of the matrix: the run interrupted in ``stage``'s job, recovered, compared."""
    workdir = tmp_path / "run"
    shutil.copytree(reference, workdir, symlinks=True)
    product, stall_at = STAGES[stage]
    if mode == "plain":  # a run that reaches the stage: its product is not there yet
        target = workdir / product
        shutil.rmtree(target) if target.is_dir() else target.unlink()
        args = ["all", "--cores", "2", *CONFIG]
    else:
        args = ["all", "--cores", "2", *CONFIG, "--forcerun", product]
    caught = interrupt(workdir, args, stall_at, SIGNALS[signame])
    assert re.fullmatch(stall_at.replace(".", r"\.").replace("*", ".*"), caught)

    recover(workdir)
    got, want = products(workdir), products(reference)
    assert sorted(got) == sorted(want)
    differ = [name for name in want if name not in NOT_DETERMINISTIC
              and not filecmp.cmp(got[name], want[name], shallow=False)]
    assert differ == []
    leftovers = [str(p) for p in (workdir / RESULTS).rglob(".*")
                 if "logs" not in p.parts and p.name != ".snakemake_timestamp"]
    assert leftovers == []
    if stage == "finetune":  # killed after its checkpoint of step 3: resumed from it
        job_log = (workdir / RESULTS / "logs/finetune/ours/shape_right.log").read_text()
        assert re.search(r"resuming from \S+step_3 \(step 3\)", job_log), job_log[-2000:]


def pytest_generate_tests(metafunc):
    if metafunc.cls is not None and issubclass(metafunc.cls, KilledJobMatrix):
        metafunc.parametrize("stage", metafunc.cls.stages)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["plain", "forcerun"])
@pytest.mark.parametrize("signame", list(SIGNALS))
class KilledJobMatrix:
    """The matrix over ``stages``. Its two halves are classes of their own: `make test` runs
    test modules and classes side by side (pytest-xdist's --dist loadscope), and the matrix is
    the suite's longest part."""

    stages: tuple[str, ...] = ()

    def test_loses_nothing_and_all_rebuilds_it(self, reference, tmp_path, stage, signame, mode):
        kill_and_recover(reference, tmp_path, stage, signame, mode)


class TestAJobKilledBeforeSampling(KilledJobMatrix):
    stages = ("prepare", "masks", "finetune")


class TestAJobKilledFromSamplingOn(KilledJobMatrix):
    stages = ("sample", "evaluate", "aggregate")
