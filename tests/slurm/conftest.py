"""The Slurm the tests run against (:mod:`cluster`): started once per session, stopped at its end by pid,
with a check that none of its daemons is left running.  Skipped, saying why, only where Slurm can be
neither found nor installed (not root, no apt); a Slurm that installs but does not start fails."""
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import cluster  # noqa: E402
from landscape_core.cli.scheduler import local_alive  # noqa: E402


@pytest.fixture(scope="session")
def slurm():
    try:
        cluster.install()
    except cluster.Unavailable as err:
        pytest.skip(str(err))
    folder = Path(tempfile.mkdtemp(prefix="landscape-slurm-"))     # munged (its own user) must reach it:
    folder.chmod(0o755)                                               # not under pytest's 0700 folders
    c = cluster.start(folder)
    before = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = c.env["SLURM_CONF"]        # Slurm's commands, submitit's included, read it
    try:
        yield c
    finally:
        stopped = c.stop()
        if before is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = before
        alive = [pid for pid in stopped if local_alive(pid)]
        assert not alive, f"Slurm daemons still running after the tests: {alive}"
        assert not cluster._slurmstepd_pids(c.folder), "job steps of the test Slurm still running"
        shutil.rmtree(folder, ignore_errors=True)
