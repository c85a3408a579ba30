"""The README's first command: the demo runs the whole pipeline once, end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from zkdrift.devtools.zkserver import ZooKeeperServer, free_port


def test_the_demo_seeds_drifts_and_runs_the_pipeline_to_an_html_report(tmp_path: Path) -> None:
    home = tmp_path / "home"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZKDRIFT_", "PREFECT_"))}
    env.update(ZKDRIFT_HOME=str(home), COLUMNS="200")
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "zkdrift.devtools.demo", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        ZooKeeperServer(home / "zookeeper", port).stop()

    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "4 differences: 4 drift, 0 pending, 0 conflict" in proc.stdout
    assert "1 of 1 tree(s) succeeded" in proc.stdout
    assert "rotated-by-hand" not in proc.stdout + proc.stderr
    report = home / "reports" / "demo.html"
    html = report.read_text()
    assert "data:image/png;base64" in html
    assert "rotated-by-hand" not in html
    assert str(report) in proc.stdout
