"""A single-node Slurm on this machine, for the Slurm tests: Debian's ``slurmctld``, ``slurmd``,
``slurm-client`` and ``munge``, installed through apt when missing, started in the foreground from a
temporary folder (their own munge socket, ports, state, spool and logs: nothing under /etc or /run is
touched) and stopped by the pids this module started.

The configuration is the smallest that runs submitit's job arrays with preemption: one node with the
machine's CPUs and memory, a fake GPU (a ``gpu`` GRES of count 1 with no device file, so that a job's
GPU request is accepted and read back; nothing uses it), two partitions (``debug``, the default, and
``gpu``), requeue allowed, no accounting (``sacct`` fails: the code under test must not need it) and a
credential lifetime of 10 s (a requeued job waits that long before it starts again; Slurm's default is
120 s).
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
COMMANDS = ("slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "munged")
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}


class Unavailable(RuntimeError):
    """Slurm cannot run here (not installable, not root): the tests are skipped with this reason."""


def _which(cmd: str) -> str | None:
    return shutil.which(cmd, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def install() -> None:
    """apt-get install the packages when a command is missing (the package index is refreshed only when
    the first attempt fails)."""
    if all(_which(c) for c in COMMANDS):
        return
    if os.geteuid() != 0 or not _which("apt-get"):
        raise Unavailable("Slurm is not installed and apt-get cannot install it here (needs root and apt)")
    cmd = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES]
    for attempt in range(2):
        if attempt:
            subprocess.run(["apt-get", "update", "-qq"], env=APT_ENV, capture_output=True, timeout=600)
        done = subprocess.run(cmd, env=APT_ENV, capture_output=True, text=True, timeout=900)
        if done.returncode == 0 and all(_which(c) for c in COMMANDS):
            return
    raise Unavailable(f"apt-get could not install {' '.join(PACKAGES)}: {done.stderr.strip()[-400:]}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024 - 1024        # leave the system 1 GB
    return 4096


@dataclass
class Cluster:
    """A running single-node Slurm; ``env`` points Slurm's commands (and submitit) at it."""

    folder: Path
    cpus: int
    memory_mb: int
    env: dict[str, str] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def conf(self) -> Path:
        return self.folder / "slurm.conf"

    def run(self, *cmd: str, check: bool = True, timeout: float = 60) -> str:
        out = subprocess.run(cmd, env={**os.environ, **self.env}, capture_output=True, text=True, timeout=timeout)
        if check and out.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}): {out.stderr.strip()}")
        return out.stdout

    def node_state(self) -> str:
        """The node's state (``idle``, ``mixed``, ``allocated``, ``drained``, ...), once per node."""
        return " ".join(sorted(set(self.run("sinfo", "-h", "-N", "-o", "%T", check=False).split())))

    def show_job(self, job_id: str) -> dict[str, str]:
        """``scontrol show job`` as ``{key: value}`` (the first record: an array's first task)."""
        text = self.run("scontrol", "show", "job", "-o", str(job_id))
        first = text.strip().splitlines()[0]
        return dict(item.split("=", 1) for item in first.split() if "=" in item)

    def log(self, name: str, lines: int = 30) -> str:
        path = self.folder / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self) -> list[int]:
        """Cancel every job, then stop the daemons this cluster started (by pid), slurmd first."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            self.run("scancel", "--user", pwd.getpwuid(os.geteuid()).pw_name, check=False)
        stopped = []
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            stopped.append(proc.pid)
        # slurmd's job steps (slurmstepd) outlive a SIGTERM to slurmd when jobs were still running
        for pid in _slurmstepd_pids(self.folder):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return stopped


def _slurmstepd_pids(folder: Path) -> list[int]:
    """This cluster's job steps: ``slurmstepd`` processes (it renames itself ``slurmstepd: [25.batch]``, so
    its command line does not name the folder) whose environment or command line does (``SLURM_CONF``,
    inherited from the slurmd started here)."""
    pids, mark = [], str(folder).encode()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if (proc / "comm").read_text().strip() != "slurmstepd":
                    continue
                seen = (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes()
            except OSError:
                continue
            if mark in seen:
                pids.append(int(proc.name))
    return pids


def _conf(c: Cluster, ctld_port: int, d_port: int) -> str:
    f = c.folder
    return f"""\
ClusterName=landscape-test
SlurmctldHost=localhost
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=cred_expire=10,socket={f}/munge/munge.socket
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobRequeue=1
ReturnToService=2
MpiDefault=none
StateSaveLocation={f}/state
SlurmdSpoolDir={f}/spool
SlurmctldPidFile={f}/slurmctld.pid
SlurmdPidFile={f}/slurmd.pid
SlurmctldLogFile={f}/slurmctld.log
SlurmdLogFile={f}/slurmd.log
SlurmdTimeout=60
MinJobAge=300
NodeName=localhost CPUs={c.cpus} RealMemory={c.memory_mb} Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=localhost MaxTime=INFINITE State=UP
"""


def start(folder: Path, timeout: float = 60) -> Cluster:
    """Install when needed, write the configuration under ``folder`` and start munged, slurmctld and
    slurmd; returns once the node is idle.  On a failure every daemon started so far is stopped."""
    install()
    if os.geteuid() != 0:
        raise Unavailable("the test Slurm runs its daemons as root (slurmd must start jobs)")
    folder = Path(folder)
    for sub in ("munge", "state", "spool"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    c = Cluster(folder, cpus=os.cpu_count() or 1, memory_mb=_memory_mb())
    c.conf.write_text(_conf(c, _free_port(), _free_port()))
    (folder / "gres.conf").write_text("AutoDetect=off\nNodeName=localhost Name=gpu File=/dev/null\n")
    c.env = {"SLURM_CONF": str(c.conf)}
    munge = pwd.getpwnam("munge")
    os.chown(folder / "munge", munge.pw_uid, munge.pw_gid)
    (folder / "munge").chmod(0o755)
    key = folder / "munge" / "munge.key"
    key.write_bytes(os.urandom(128))
    os.chown(key, munge.pw_uid, munge.pw_gid)
    key.chmod(0o400)
    env = {**os.environ, **c.env}
    logs = {}
    try:
        logs["munged"] = open(folder / "munged.out", "wb")
        c.procs["munged"] = subprocess.Popen(
            ["munged", "-F", f"--socket={folder}/munge/munge.socket", f"--key-file={key}",
             f"--pid-file={folder}/munge/munged.pid", f"--log-file={folder}/munge/munged.log",
             f"--seed-file={folder}/munge/munged.seed"],
            user=munge.pw_uid, group=munge.pw_gid, stdout=logs["munged"], stderr=subprocess.STDOUT,
            start_new_session=True)
        _wait(lambda: (folder / "munge" / "munge.socket").exists(), 20, "munged's socket", c, "munge/munged")
        for name, cmd in (("slurmctld", ["slurmctld", "-D", "-i", "-f", str(c.conf)]),
                          ("slurmd", ["slurmd", "-D", "-N", "localhost", "-f", str(c.conf)])):
            logs[name] = open(folder / f"{name}.out", "wb")
            c.procs[name] = subprocess.Popen(cmd, env=env, stdout=logs[name], stderr=subprocess.STDOUT,
                                             start_new_session=True)
        _wait(lambda: c.node_state() == "idle", timeout, "the node to be idle", c, "slurmd")
    except BaseException:
        c.stop()
        raise
    finally:
        for f in logs.values():
            f.close()
    return c


def _wait(ready, timeout: float, what: str, c: Cluster, log: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for name, proc in c.procs.items():
            if proc.poll() is not None:
                raise Unavailable(f"{name} exited ({proc.returncode}) while waiting for {what}:\n"
                                  + (c.folder / f"{name}.out").read_text(errors="replace")[-1500:]
                                  + "\n" + c.log(name))
        if ready():
            return
        time.sleep(0.5)
    raise Unavailable(f"timed out after {timeout:.0f} s waiting for {what}:\n{c.log(log)}")
