"""Helpers shared by integration and e2e tests."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

from kazoo.client import KazooClient


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


def run_cli(
    *args: str, env: dict[str, str], input: str | None = None, timeout: float = 120
) -> CliResult:
    """Run the real ``zkdrift`` entry point in a subprocess (exit codes as users see them)."""
    proc = subprocess.run(
        [sys.executable, "-c", "from zkdrift.cli import main; main()", *args],
        env=env,
        capture_output=True,
        text=True,
        input=input,
        timeout=timeout,
        check=False,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def create_tree(client: KazooClient, nodes: dict[str, bytes]) -> None:
    """Create nodes parents first (missing parents get empty data)."""
    for path in sorted(nodes, key=lambda p: (p.count("/"), p)):
        if client.exists(path) is None:
            client.create(path, nodes[path], makepath=True)
        else:
            client.set(path, nodes[path])
