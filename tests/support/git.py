"""Git repositories made inside a test: a working copy and a bare remote it pushes to.

No network: the remote is a directory, reached by its path or a ``file://`` URL.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

_ENV = {
    "GIT_AUTHOR_NAME": "Ann Author",
    "GIT_AUTHOR_EMAIL": "ann@example.com",
    "GIT_COMMITTER_NAME": "Ann Author",
    "GIT_COMMITTER_EMAIL": "ann@example.com",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(_ENV)
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc.stdout.strip()


class Repo:
    """A working copy at ``work`` whose branch ``main`` is pushed to the bare ``remote``."""

    def __init__(self, base: Path) -> None:
        self.work = base / "work"
        self.remote = base / "remote.git"
        self.work.mkdir(parents=True)
        git(base, "init", "--quiet", "--bare", "--initial-branch=main", str(self.remote))
        git(self.work, "init", "--quiet", "--initial-branch=main")
        git(self.work, "remote", "add", "origin", str(self.remote))

    @property
    def url(self) -> str:
        return f"file://{self.remote}"

    def write(self, files: dict[str, bytes | str | None]) -> None:
        """Write (or, for None, delete) files relative to the working copy."""
        for name, content in files.items():
            target = self.work / name
            if content is None:
                target.unlink()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content.encode() if isinstance(content, str) else content)

    def commit(self, message: str, files: dict[str, bytes | str | None] | None = None) -> str:
        """Commit ``files`` and push ``main``; return the commit's SHA."""
        if files:
            self.write(files)
        git(self.work, "add", "--all")
        git(self.work, "commit", "--quiet", "--allow-empty", "-m", message)
        git(self.work, "push", "--quiet", "origin", "main")
        return self.head()

    def head(self) -> str:
        return git(self.work, "rev-parse", "HEAD")

    def force_push(self, message: str, files: dict[str, bytes | str | None]) -> str:
        """Replace the last commit with another one and force-push it."""
        git(self.work, "reset", "--quiet", "--hard", "HEAD~1")
        self.write(files)
        git(self.work, "add", "--all")
        git(self.work, "commit", "--quiet", "-m", message)
        git(self.work, "push", "--quiet", "--force", "origin", "main")
        return self.head()

    def tag(self, name: str, message: str | None = None) -> None:
        if message is None:
            git(self.work, "tag", name)
        else:
            git(self.work, "tag", "-a", name, "-m", message)
        git(self.work, "push", "--quiet", "origin", name)
