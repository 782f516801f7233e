"""The demo DAG submitted through profiles/slurm to a real single-node SLURM on 127.0.0.1.

Runs where Debian's slurm-wlm and munge are installed (``make test`` installs them) and the
tests run as root (munged and slurmd need it); skips with the reason otherwise.
"""

import os
import re
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml

from slurm_cluster import MARK, SYSTEM_CONF, single_node_slurm, slurm_available

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


@pytest.fixture
def slurm_env(tmp_path_factory):
    if not slurm_available():
        pytest.skip("slurm-wlm and munge are not installed (make test installs them with apt-get)")
    if os.geteuid() != 0:
        pytest.skip("the test SLURM's munged and slurmd must run as root")
    if SYSTEM_CONF.exists() and not SYSTEM_CONF.read_text().startswith(MARK):
        pytest.skip(f"{SYSTEM_CONF} belongs to a real SLURM here; the test cluster would replace it")
    start = time.monotonic()
    with single_node_slurm(tmp_path_factory.mktemp("slurm")) as env:
        print(f"single-node SLURM up in {time.monotonic() - start:.1f} s")
        yield env


def test_demo_through_the_slurm_profile(workflow_copy, slurm_env):
    profile = workflow_copy / "profiles" / "slurm" / "config.yaml"
    text = profile.read_text()
    # The one line a user edits: the partition (the test cluster's is called debug).
    edited = re.sub(r'slurm_partition: "[^"]*"', 'slurm_partition: "debug"', text)
    assert edited != text
    profile.write_text(edited)
    start = time.monotonic()
    result = subprocess.run(
        # no accounting on the test cluster: jobs are followed with squeue (see the profile)
        [sys.executable, "-m", "snakemake", "--profile", "profiles/slurm", "all",
         "--slurm-status-command", "squeue", "--configfile", "config/tiny.yaml"],
        cwd=workflow_copy, env=slurm_env, capture_output=True, text=True,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    print(f"demo through SLURM in {time.monotonic() - start:.0f} s")
    table = pd.read_csv(workflow_copy / "results" / "tiny" / "table.csv")
    from t2v_core.methods import default_methods

    methods = default_methods()
    assert list(table["method"]) == methods and table["alignment"].notna().all()
    # Every job that is not a local rule ran as a SLURM job: squeue keeps finished jobs
    # (MinJobAge) and the plugin writes one log per SLURM job.
    listed = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i %T %j"], env=slurm_env,
                            capture_output=True, text=True).stdout.split("\n")
    jobs = [line.split() for line in listed if line.strip()]
    assert jobs and all(state == "COMPLETED" for _, state, _ in jobs), jobs
    submitted = len(re.findall(r"Job \S+ has been submitted with SLURM jobid", output))  # group jobs: uuid
    assert submitted == len(jobs)
    slurm_logs = list((workflow_copy / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert len(slurm_logs) >= len(jobs)
    rules = {m.group(1) for m in re.finditer(r"rule (\w+):", output)}
    assert {"extract_masks", "finetune", "sample", "evaluate"} <= rules
    print(f"SLURM jobs submitted: {len(jobs)}")
