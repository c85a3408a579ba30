"""Peak resident memory of a command, with nothing of the measuring process in it.

A child's ``ru_maxrss`` starts from its parent's: ``fork`` copies the parent's
page counts and ``exec`` keeps the high-water mark of the memory it replaces.
A command started straight from pytest (hundreds of MB with Prefect loaded)
would report at least pytest's size, and any bound on it would always hold.
So a small launcher process starts the command and reports the command's own
peak from ``wait4``; the launcher's few MB are all the command inherits.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

_LAUNCHER = """
import os, sys
report, argv = sys.argv[1], sys.argv[2:]
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(report, "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


@dataclass(frozen=True)
class Measured:
    exit_code: int
    stdout: bytes
    stderr: bytes
    peak_rss_kib: int


def run_measured(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> Measured:
    """Run ``argv`` to its end; its output, exit code and own peak RSS in KiB."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "peak"
        done = subprocess.run(
            [sys.executable, "-c", _LAUNCHER, str(report), *argv],
            env=env,
            cwd=cwd,
            capture_output=True,
        )
        return Measured(done.returncode, done.stdout, done.stderr, int(report.read_text()))
