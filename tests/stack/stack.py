"""Drive the compose stack with whichever engine this machine has.

Docker Compose against a Docker engine where one answers; otherwise podman with
podman-compose, as `scripts/prepare-engine` sets them up. Both are driven the
same way, through their command lines, so one test covers both.

podman-compose ignores `condition: service_healthy` on podman < 4.6, and its
`--requires` breaks services that depend on a one-shot that already exited.
The stack is therefore started in order here (infrastructure, wait healthy,
migrate, seed, then the services), each step with `up --no-deps`; the compose
file keeps its depends_on conditions for Docker Compose users.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
# What the Dockerfile and docker-compose.yml read: the build context (as
# .dockerignore lets it in), the compose file, the jupyter service's notebooks.
PROJECT_FILES = (
    "Dockerfile",
    ".dockerignore",
    "docker-compose.yml",
    "pyproject.toml",
    "README.md",
    "src",
    "flows",
    "tasks",
    "notebooks",
)
INFRASTRUCTURE = ("zk1", "zk2", "zk3", "mysql", "prefect")
ZOOKEEPER_NODES = ("zk1", "zk2", "zk3")
# Service -> container port published on a free loopback port of the host.
PUBLISHED = {
    "zk1": 2181,
    "zk2": 2181,
    "zk3": 2181,
    "mysql": 3306,
    "prefect": 4200,
    "jupyter": 8888,
    "zkdrift": 8765,  # the HTML reports
}
IMAGE_TAG = "stack-test"


class StackError(AssertionError):
    """A step of bringing the stack up or down failed."""


@dataclass(frozen=True)
class Engine:
    name: str  # docker | podman
    cli: str
    compose: tuple[str, ...]

    def run(
        self, *args: str, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.cli, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise StackError(
                f"{self.cli} {args[0]} exited {result.returncode}:\n{result.stderr[-3000:]}"
            )
        return result


def docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def detect_engine() -> Engine:
    """Docker when its engine answers (or ZKDRIFT_STACK_ENGINE says so), else podman.

    A missing engine fails the test: it never skips.
    """
    choice = os.environ.get("ZKDRIFT_STACK_ENGINE", "")
    if choice not in ("", "docker", "podman"):
        pytest.fail(f"ZKDRIFT_STACK_ENGINE must be docker or podman, not {choice!r}")
    if choice == "docker" or (choice == "" and docker_answers()):
        if not docker_answers():
            pytest.fail("ZKDRIFT_STACK_ENGINE=docker, but the Docker engine does not answer")
        return Engine("docker", "docker", ("docker", "compose"))
    missing = [tool for tool in ("podman", "podman-compose") if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"no container engine: {', '.join(missing)} not found and no Docker engine "
            "answers. Run scripts/prepare-engine (scripts/test-stack does) first.",
            pytrace=False,
        )
    return Engine("podman", "podman", ("podman-compose",))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def four_letter_word(port: int, word: str = "srvr", timeout: float = 5) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(word.encode())
        chunks = []
        while chunk := sock.recv(4096):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def zookeeper_mode(port: int) -> str | None:
    """leader / follower / standalone, or None when the node does not serve."""
    try:
        answer = four_letter_word(port)
    except OSError:
        return None
    match = re.search(r"^Mode: (\w+)", answer, re.MULTILINE)
    return match.group(1) if match else None


@dataclass
class Stack:
    """One compose project in a directory of its own, torn down by down()."""

    engine: Engine
    directory: Path
    project: str
    ports: dict[str, int]
    env: dict[str, str]
    log: Path
    exit_codes: dict[str, int] = field(default_factory=dict)
    # Compose's own output, unredacted, kept in memory only (for the secrets test).
    outputs: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def create(cls, engine: Engine, directory: Path) -> Stack:
        """Copy the project's stack files and write the test's env and override files.

        The copy keeps the test away from a developer's own .env, and gives the
        compose file the paths it names (build context `.`, `./notebooks`).
        """
        for name in PROJECT_FILES:
            source = REPO / name
            if source.is_dir():
                shutil.copytree(
                    source,
                    directory / name,
                    symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints"),
                )
            else:
                shutil.copy2(source, directory / name)
        ports = {service: free_port() for service in PUBLISHED}
        # Throwaway credentials of this run only, in the env file alone.
        env = {
            "REPORTS_HOST_PORT": str(ports["zkdrift"]),
            "MYSQL_DATABASE": "zkdrift",
            "MYSQL_USER": "zkdrift",
            "MYSQL_PASSWORD": secrets.token_hex(16),
            "JUPYTER_TOKEN": secrets.token_hex(16),
            "ZKDRIFT_IMAGE_TAG": IMAGE_TAG,
        }
        (directory / ".env").write_text(
            "".join(f"{key}={value}\n" for key, value in env.items()), encoding="utf-8"
        )
        (directory / ".env").chmod(0o600)
        # `!override` replaces the published ports instead of adding to them: this
        # machine already uses 2181 and 3306.
        override = ["services:"]
        for service, container_port in PUBLISHED.items():
            override += [
                f"  {service}:",
                "    ports: !override",
                f'      - "127.0.0.1:{ports[service]}:{container_port}"',
            ]
        (directory / "docker-compose.test.yml").write_text(
            "\n".join(override) + "\n", encoding="utf-8"
        )
        project = f"zkdrift-stack-{secrets.token_hex(3)}"
        return cls(engine, directory, project, ports, env, directory / "compose.log")

    # --- compose ----------------------------------------------------------------

    def secret_values(self) -> list[str]:
        return [value for key, value in self.env.items() if "PASSWORD" in key or "TOKEN" in key]

    def redact(self, text: str) -> str:
        for value in self.secret_values():
            text = text.replace(value, "***")
        return re.sub(r"(GENERATED ROOT PASSWORD:\s*)\S+", r"\1***", text)

    def compose(
        self, *args: str, timeout: float = 300, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run compose on this project; its output goes to the log, never to the console.

        Only PATH, HOME and the engine's own variables pass: a MYSQL_PASSWORD in the
        caller's shell must not override the env file.
        """
        command = [
            *self.engine.compose,
            "--project-name",
            self.project,
            "--file",
            "docker-compose.yml",
            "--file",
            "docker-compose.test.yml",
            "--env-file",
            ".env",
            "--profile",
            "reports",
            *args,
        ]
        env = {
            key: value
            for key, value in os.environ.items()
            if key in ("PATH", "HOME", "TMPDIR", "XDG_RUNTIME_DIR")
            or key.startswith(("DOCKER_", "CONTAINER", "BUILDAH_", "BUILDKIT_"))
        }
        if self.engine.name == "podman":
            # Without it, podman builds OCI images, and OCI has no HEALTHCHECK.
            env["BUILDAH_FORMAT"] = "docker"
        started = time.monotonic()
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            cwd=self.directory,
            env=env,
            timeout=timeout,
            check=False,
        )
        self.outputs.append(result.stdout + result.stderr)
        with self.log.open("a", encoding="utf-8") as log:
            log.write(f"$ compose {' '.join(args)}  ({time.monotonic() - started:.1f} s)\n")
            log.write(self.redact(result.stdout + result.stderr) + "\n")
        if check and result.returncode != 0:
            tail = self.redact(result.stderr or result.stdout)[-3000:]
            raise StackError(f"compose {' '.join(args)} exited {result.returncode}:\n{tail}")
        return result

    # --- containers -------------------------------------------------------------

    def _project_filter(self) -> list[str]:
        return ["--filter", f"label=com.docker.compose.project={self.project}"]

    def container(self, service: str) -> str:
        result = self.engine.run(
            "ps",
            "--all",
            *self._project_filter(),
            "--filter",
            f"label=com.docker.compose.service={service}",
            "--format",
            "{{.ID}}",
        )
        ids = result.stdout.split()
        if len(ids) != 1:
            raise StackError(f"expected one {service} container, found {ids}")
        return ids[0]

    def state(self, service: str) -> dict[str, object]:
        result = self.engine.run("inspect", "--format", "{{json .State}}", self.container(service))
        state: dict[str, object] = json.loads(result.stdout)
        return state

    def logs(self, service: str, tail: int | None = None) -> str:
        args = ["logs", *(["--tail", str(tail)] if tail else []), self.container(service)]
        result = self.engine.run(*args, check=False)
        return self.redact(result.stdout + result.stderr)

    def exec(self, service: str, *command: str, timeout: float = 120) -> str:
        result = self.engine.run("exec", self.container(service), *command, timeout=timeout)
        return result.stdout

    def healthy(self, service: str) -> bool:
        """Run the container's healthcheck now and say whether it passed.

        podman 4.3 runs healthchecks from systemd timers, and there is no systemd
        here: `podman healthcheck run` runs it on demand. Docker runs them itself.
        """
        container = self.container(service)
        if self.engine.name == "podman":
            return self.engine.run("healthcheck", "run", container, check=False).returncode == 0
        result = self.engine.run(
            "inspect", "--format", "{{json .State.Health.Status}}", container, check=False
        )
        return result.returncode == 0 and json.loads(result.stdout) == "healthy"

    def wait_healthy(self, services: Iterable[str], timeout: float = 240) -> None:
        pending = list(services)
        deadline = time.monotonic() + timeout
        while pending:
            for service in list(pending):
                if self.healthy(service):
                    pending.remove(service)
                elif self.state(service).get("Running") is not True:
                    raise StackError(
                        f"{service} stopped before it was healthy:\n{self.logs(service, 40)}"
                    )
            if pending and time.monotonic() > deadline:
                details = "\n".join(f"--- {s}\n{self.logs(s, 30)}" for s in pending)
                raise StackError(f"not healthy after {timeout:.0f} s: {pending}\n{details}")
            if pending:
                time.sleep(2)

    def wait_exit(self, service: str, timeout: float = 180) -> int:
        result = self.engine.run("wait", self.container(service), timeout=timeout)
        return int(result.stdout.split()[-1])

    def kill(self, service: str) -> None:
        self.engine.run("kill", self.container(service))

    def image_config(self, image: str) -> dict[str, Any]:
        result = self.engine.run("image", "inspect", image)
        config: dict[str, Any] = json.loads(result.stdout)[0]
        return config

    # --- life cycle -------------------------------------------------------------

    def build(self) -> None:
        """Build the application images from the project's own Dockerfile.

        One service at a time: the zkdrift image first, then jupyter on top of its
        cached stages. (podman-compose builds every service that has a build
        section at once, the same image three times over, on two cores.)
        """
        self.compose("build", "zkdrift", timeout=900)
        self.compose("build", "jupyter", timeout=900)

    def start(self) -> None:
        """Bring the stack up in the order the compose file's depends_on describe."""
        self.compose("up", "--detach", "--no-deps", *INFRASTRUCTURE)
        self.wait_healthy(INFRASTRUCTURE)
        for one_shot in ("migrate", "seed"):
            self.compose("up", "--detach", "--no-deps", one_shot)
            self.exit_codes[one_shot] = code = self.wait_exit(one_shot)
            if code != 0:
                raise StackError(f"{one_shot} exited {code}:\n{self.logs(one_shot, 60)}")
        self.compose("up", "--detach", "--no-deps", "zkdrift", "jupyter")
        self.wait_healthy(("zkdrift", "jupyter"))

    def down(self) -> None:
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "10", timeout=300)

    def leftovers(self) -> dict[str, list[str]]:
        """Containers, volumes, networks (and podman pods) of this project still present.

        Found by the compose project label and by name, as each engine names them
        (`<project>_<service>_1` or `<project>-<service>-1`, `<project>_<volume>`,
        `<project>_default`, `pod_<project>`).
        """
        prefixes = (f"{self.project}_", f"{self.project}-", f"pod_{self.project}")

        def names(*args: str) -> list[str]:
            output = self.engine.run(*args).stdout.split()
            return sorted(set(output))

        def named(listing: Sequence[str]) -> list[str]:
            return [name for name in listing if name.startswith(prefixes)]

        found = {
            "containers": names("ps", "--all", *self._project_filter(), "--format", "{{.Names}}")
            + named(names("ps", "--all", "--format", "{{.Names}}")),
            "volumes": names("volume", "ls", *self._project_filter(), "--format", "{{.Name}}")
            + named(names("volume", "ls", "--format", "{{.Name}}")),
            "networks": named(names("network", "ls", "--format", "{{.Name}}")),
        }
        if self.engine.name == "podman":
            found["pods"] = named(names("pod", "ls", "--format", "{{.Name}}"))
        return {kind: sorted(set(items)) for kind, items in found.items() if items}

    def diagnostics(self) -> str:
        """Every service's last log lines, with the run's secrets redacted."""
        parts = [f"compose log: {self.log}"]
        for service in (*INFRASTRUCTURE, "migrate", "seed", "zkdrift", "jupyter"):
            try:
                parts.append(f"--- {service}\n{self.logs(service, 40)}")
            except StackError as error:
                parts.append(f"--- {service}: {error}")
        return "\n".join(parts)
