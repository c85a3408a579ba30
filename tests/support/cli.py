"""Running the ``zkdrift`` command in tests: in-process (fast) or as a real subprocess."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


def run_cli(
    *args: str, env: dict[str, str], input: str | None = None, timeout: float = 120
) -> CliResult:
    """Run a ``zkdrift`` command line in this process, exactly as ``zkdrift.cli.main`` does.

    The environment is exactly ``env`` for the duration, stdout and stderr are
    captured, and the exit status is the one the shell would see. Fast enough
    to use everywhere; :func:`run_cli_process` runs a real subprocess.
    """
    from zkdrift.cli import common, run_command

    del timeout  # in-process commands finish or fail on their own timeouts
    saved = dict(os.environ)
    raw_stdout = io.BytesIO()
    stdout = io.TextIOWrapper(raw_stdout, encoding="utf-8", write_through=True)
    stderr = io.StringIO()
    try:
        os.environ.clear()
        os.environ.update(env)
        # The consoles are made once per process; a process running the command
        # once would size them from this COLUMNS (80 without one, off a terminal).
        columns = env.get("COLUMNS", "")
        for console in (common.console, common.err_console):
            console.width = int(columns) if columns.isdigit() else 80
        with (
            contextlib.redirect_stdout(stdout),
            contextlib.redirect_stderr(stderr),
            _stdin(input),
        ):
            code = run_command(list(args))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    stdout.flush()
    return CliResult(code, raw_stdout.getvalue().decode("utf-8", "replace"), stderr.getvalue())


@contextlib.contextmanager
def _stdin(text: str | None) -> Iterator[None]:
    saved = sys.stdin
    sys.stdin = io.StringIO(text or "")
    try:
        yield
    finally:
        sys.stdin = saved


def run_cli_process(
    *args: str, env: dict[str, str], input: str | None = None, timeout: float = 120
) -> CliResult:
    """Run the real ``zkdrift`` entry point in a subprocess (exit codes as users see them)."""
    proc = subprocess.run(
        [sys.executable, "-m", "zkdrift", *args],
        env=env,
        capture_output=True,
        text=True,
        input=input,
        timeout=timeout,
        check=False,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@contextlib.contextmanager
def zkdrift_process(
    *args: str, env: dict[str, str], cwd: Path | None = None, stop: int = signal.SIGTERM
) -> Iterator[subprocess.Popen[str]]:
    """A long-running ``zkdrift`` command (``watch``, ``serve``) in a process group of
    its own; afterwards the whole group gets ``stop`` (SIGKILL if it outlives 30 s)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "zkdrift", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, stop)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
