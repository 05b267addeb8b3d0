"""A real single-node SLURM on localhost for tests: munged, slurmctld and slurmd from Debian's
packages, no systemd, no cgroups, no accounting daemon (see ../shared/notes/slurm-on-one-machine.md).

The config must sit at /etc/slurm/slurm.conf (the executor's jobstep strips SLURM_CONF), so the
fixture needs root; it backs up any slurm.conf it finds and puts it back afterwards.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

CONF = Path("/etc/slurm/slurm.conf")
NODE = "nsnode"


def why_not_available() -> str | None:
    """A reason SLURM cannot be started here, or None."""
    if os.geteuid() != 0:
        return "starting slurmctld/slurmd needs root (the config must live in /etc/slurm)"
    missing = [b for b in ("munged", "slurmctld", "slurmd", "sinfo", "squeue", "sbatch") if shutil.which(b) is None]
    if missing:
        return f"SLURM is not installed ({', '.join(missing)} missing): apt-get install slurm-wlm munge"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalSlurm:
    def __init__(self, workdir: Path, cpus: int = 2, memory_mb: int = 8000):
        self.dir = workdir
        self.cpus, self.memory_mb = cpus, memory_mb
        self.jobcomp = workdir / "jobcomp.txt"
        self._backup: bytes | None = None
        self._started: list[Path] = []

    def config(self) -> str:
        d = self.dir
        return f"""ClusterName=nightskynet
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={self.jobcomp}
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
MinJobAge=600
DefMemPerCPU=1000
NodeName={NODE} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb} State=UNKNOWN
PartitionName=test Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
"""

    def start(self) -> "LocalSlurm":
        for sub in ("state", "spool"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        CONF.parent.mkdir(parents=True, exist_ok=True)
        if CONF.exists():
            self._backup = CONF.read_bytes()
        CONF.write_text(self.config())
        self._start_munge()
        subprocess.run(["slurmctld"], check=True)
        self._started.append(self.dir / "slurmctld.pid")
        subprocess.run(["slurmd", "-N", NODE], check=True)
        self._started.append(self.dir / "slurmd.pid")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = subprocess.run(["sinfo", "-h", "-n", NODE, "-o", "%t"], capture_output=True, text=True).stdout.strip()
            if state == "idle":
                return self
            time.sleep(0.5)
        raise RuntimeError(f"the SLURM node never became idle (state {state!r}); see {self.dir}/slurmctld.log")

    def _start_munge(self) -> None:
        if subprocess.run(["pgrep", "-x", "munged"], capture_output=True).returncode == 0:
            return
        key = Path("/etc/munge/munge.key")
        if not key.exists():
            subprocess.run(["mungekey", "--create"], check=True)
            shutil.chown(key, "munge", "munge")
        run_dir = Path("/run/munge")
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.chown(run_dir, "munge", "munge")
        subprocess.run(["runuser", "-u", "munge", "--", "munged"], check=True)

    def completed_jobs(self) -> list[dict[str, str]]:
        """SLURM's own record of finished jobs (jobcomp/filetxt), one dict per job."""
        if not self.jobcomp.exists():
            return []
        jobs = []
        for line in self.jobcomp.read_text().splitlines():
            fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
            jobs.append(fields)
        return jobs

    def stop(self) -> None:
        for pid_file in reversed(self._started):
            try:
                os.kill(int(pid_file.read_text().strip()), 9)
            except (OSError, ValueError):
                pass
        if self._backup is not None:
            CONF.write_bytes(self._backup)
        elif CONF.exists():
            CONF.unlink()
