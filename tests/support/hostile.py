"""Hostile desired-state sources: each must be refused in one error line naming a file."""

from __future__ import annotations

import os
from pathlib import Path

# A secret on the line of a parse error: the error names the line, never shows it.
ECHOED_SECRET = "hunter2pw"


def hostile_sources(base: Path) -> dict[Path, Path]:
    """Each hostile import source, with the file its error must name."""
    base.mkdir()
    env_tree = base / "env-tree"
    (env_tree / "db").mkdir(parents=True)
    (env_tree / "db" / "host").write_bytes(b"db.internal")
    os.symlink("/proc/self/environ", env_tree / "db" / "environ")
    fifo_tree = base / "fifo-tree"
    fifo_tree.mkdir()
    os.mkfifo(fifo_tree / "pipe")
    laughs = ["l1: &l1 [" + ",".join(["lol"] * 9) + "]"]
    laughs += [f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]" for i in range(2, 10)]
    files = {
        "bomb.yaml": "\n".join(laughs) + "\n",
        "loop.yaml": "a: &a [*a]\n",
        "deep.yaml": "[" * 10_000,
        "deep.json": "[" * 100_000,
        "secret.yaml": f'db:\n  password: "{ECHOED_SECRET}\n',
    }
    sources = {env_tree: env_tree / "db" / "environ", fifo_tree: fifo_tree / "pipe"}
    for name, text in files.items():
        (base / name).write_text(text)
        sources[base / name] = base / name
    return sources
