"""A single-node SLURM on 127.0.0.1 for the tests: munged, slurmctld and slurmd from Debian's
slurm-wlm, with their configuration, state and logs in a temporary folder.

Without accounting (``accounting_storage/none``) ``sacct`` cannot answer, so jobs are followed
with ``squeue``. The daemons started here are stopped by PID.

The configuration is also written to /etc/slurm/slurm.conf, where Slurm's commands look for
it: the snakemake job-step executor removes every ``SLURM_*`` variable, ``SLURM_CONF``
included, before its ``srun``. An existing slurm.conf that this module did not write is never
replaced (the cluster is then refused); the one written here is removed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
MARK = "# written by the t2v test suite (tests/slurm_cluster.py); safe to delete\n"


def slurm_available() -> bool:
    return all(shutil.which(d) or Path(f"/usr/sbin/{d}").exists() for d in DAEMONS) and bool(shutil.which("sbatch"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _daemon(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def slurm_conf(root: Path, cpus: int, memory_mb: int, munge_socket: Path) -> str:
    return MARK + f"""\
ClusterName=t2vtest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
AuthInfo=socket={munge_socket}
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
MinJobAge=600
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


def _wait_for(check, what: str, timeout: float, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    tails = "\n".join(f"--- {p}\n{p.read_text()[-2000:] if p.exists() else '(missing)'}" for p in logs)
    raise RuntimeError(f"SLURM test cluster: {what} not ready after {timeout:.0f} s\n{tails}")


@contextlib.contextmanager
def single_node_slurm(root: Path, cpus: int = 2, memory_mb: int = 16000):
    """Start the cluster under ``root``; yield the environment (SLURM_CONF) for its clients."""
    root = Path(root)
    for sub in ("state", "spool", "munge"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "munge", 0o700)
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(128))
    os.chmod(key, 0o600)
    munge_socket = root / "munge" / "munge.socket"
    conf = root / "slurm.conf"
    conf.write_text(slurm_conf(root, cpus, memory_mb, munge_socket))
    if SYSTEM_CONF.exists() and not SYSTEM_CONF.read_text().startswith(MARK):
        raise RuntimeError(f"{SYSTEM_CONF} exists and was not written by the tests; not replacing it")
    SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(conf, SYSTEM_CONF)
    env = {**os.environ, "SLURM_CONF": str(conf)}
    processes = []
    try:
        processes.append(subprocess.Popen(
            [_daemon("munged"), "--foreground", "--force", f"--key-file={key}", f"--socket={munge_socket}",
             f"--pid-file={root}/munge/munged.pid", f"--log-file={root}/munge/munged.log",
             f"--seed-file={root}/munge/munged.seed"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
        _wait_for(munge_socket.exists, "munged", 20, [root / "munge" / "munged.log"])
        processes.append(subprocess.Popen([_daemon("slurmctld"), "-D", "-i", "-f", str(conf)], env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
        processes.append(subprocess.Popen([_daemon("slurmd"), "-D", "-N", "localhost", "-f", str(conf)], env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))

        def node_idle() -> bool:
            out = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True)
            return out.returncode == 0 and out.stdout.strip() == "idle"

        _wait_for(node_idle, "the node", 60, [root / "slurmctld.log", root / "slurmd.log"])
        yield env
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in reversed(processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if SYSTEM_CONF.exists() and SYSTEM_CONF.read_text().startswith(MARK):
            SYSTEM_CONF.unlink()
