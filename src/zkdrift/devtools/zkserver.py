"""Start and stop local ZooKeeper servers for development, demos and tests.

Uses Debian's ``zookeeper`` package (installed on demand with apt-get when no
ZooKeeper jar is found). Each server gets its own data directory and a
loopback port, so many can run side by side.

    python -m zkdrift.devtools.zkserver start --port 2181 --dir .zkdrift/zk
    python -m zkdrift.devtools.zkserver stop --dir .zkdrift/zk
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ZK_JAR_CANDIDATES = (Path("/usr/share/java/zookeeper.jar"),)
ZK_CONF_DIR = Path("/etc/zookeeper/conf")


class ZooKeeperServerError(RuntimeError):
    """A local ZooKeeper server could not be installed, started or stopped."""


def find_zookeeper_jar() -> Path | None:
    env = os.environ.get("ZKDRIFT_ZOOKEEPER_JAR")
    candidates = [Path(env)] if env else list(ZK_JAR_CANDIDATES)
    return next((p for p in candidates if p.is_file()), None)


def ensure_zookeeper_installed() -> Path:
    """Return the ZooKeeper jar, installing Debian's package if it is missing."""
    jar = find_zookeeper_jar()
    if jar is not None:
        return jar
    if shutil.which("apt-get") is None:
        raise ZooKeeperServerError(
            "ZooKeeper is not installed and apt-get is not available; install the "
            "'zookeeper' package or set ZKDRIFT_ZOOKEEPER_JAR"
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    for cmd in (
        [*sudo, "apt-get", "update", "-qq"],
        [*sudo, "apt-get", "install", "-y", "-qq", "zookeeper"],
    ):
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ZooKeeperServerError(
                f"'{' '.join(cmd)}' failed ({result.returncode}): {result.stderr.strip()[-2000:]}"
            )
    jar = find_zookeeper_jar()
    if jar is None:
        raise ZooKeeperServerError("installed the zookeeper package but found no zookeeper.jar")
    return jar


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _ruok(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when a server answers on the port (the 'srvr' 4lw is whitelisted below)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(b"srvr")
            return s.recv(64).startswith(b"Zookeeper version")
    except OSError:
        return False


@dataclass
class ZooKeeperServer:
    """One standalone (or ensemble member) ZooKeeper server process."""

    data_dir: Path
    port: int
    host: str = "127.0.0.1"
    test_mode: bool = False
    process: subprocess.Popen[bytes] | None = None
    server_id: int | None = None
    ensemble: tuple[tuple[int, int, int], ...] = ()  # (client, peer, election) per member
    # zoo.cfg lines, JVM flags and jars beyond the defaults: TLS, SASL and the like.
    extra_config: tuple[str, ...] = ()
    jvm_flags: tuple[str, ...] = ()
    extra_classpath: tuple[Path, ...] = ()

    @property
    def connect_string(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "zookeeper.pid"

    def write_config(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        lines = [
            "tickTime=500",
            "initLimit=20",
            "syncLimit=10",
            f"dataDir={self.data_dir / 'data'}",
            f"clientPort={self.port}",
            f"clientPortAddress={self.host}",
            "admin.enableServer=false",
            "4lw.commands.whitelist=srvr,ruok,stat,mntr",
            "maxClientCnxns=0",
            "minSessionTimeout=1000",
            "maxSessionTimeout=60000",
            # Snapshots grow with the trees tests create; keep them bounded.
            "autopurge.snapRetainCount=3",
            "autopurge.purgeInterval=1",
        ]
        if self.test_mode:
            # Skip fsync: bulk creates are several times faster. Tests only.
            lines.append("forceSync=no")
        if self.ensemble:
            for i, (_client, peer, election) in enumerate(self.ensemble, start=1):
                lines.append(f"server.{i}={self.host}:{peer}:{election}")
        lines.extend(self.extra_config)
        (self.data_dir / "data").mkdir(exist_ok=True)
        if self.server_id is not None:
            (self.data_dir / "data" / "myid").write_text(f"{self.server_id}\n")
        cfg = self.data_dir / "zoo.cfg"
        cfg.write_text("\n".join(lines) + "\n")
        return cfg

    def start(self, timeout: float = 60.0) -> ZooKeeperServer:
        jar = ensure_zookeeper_installed()
        if _ruok(self.host, self.port):
            raise ZooKeeperServerError(f"port {self.port} is already serving ZooKeeper")
        cfg = self.write_config()
        java = shutil.which("java")
        if java is None:
            raise ZooKeeperServerError("java not found; the zookeeper package needs a JRE")
        parts = [str(ZK_CONF_DIR)] if ZK_CONF_DIR.is_dir() else []
        parts += [str(jar), *(str(p) for p in self.extra_classpath)]
        classpath = ":".join(parts)
        log = open(self.data_dir / "zookeeper.log", "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            [
                java,
                "-Xmx512m",
                "-Dzookeeper.log.dir=" + str(self.data_dir),
                "-Dzookeeper.root.logger=WARN,CONSOLE",
                "-Dzookeeper.jmx.log4j.disable=true",
                *self.jvm_flags,
                "-cp",
                classpath,
                "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                str(cfg),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self.pid_file.write_text(str(self.process.pid))
        if not self.ensemble:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                tail = (self.data_dir / "zookeeper.log").read_text(errors="replace")[-2000:]
                raise ZooKeeperServerError(
                    f"ZooKeeper on port {self.port} exited with {self.process.returncode}:\n{tail}"
                )
            if _ruok(self.host, self.port):
                return
            time.sleep(0.1)
        raise ZooKeeperServerError(f"ZooKeeper on port {self.port} not ready in {timeout:.0f}s")

    def stop(self, timeout: float = 5.0) -> None:
        pid = self.process.pid if self.process else _read_pid(self.pid_file)
        if pid is None:
            return
        _terminate(pid, timeout)
        if self.process is not None:
            self.process.wait(timeout=timeout)
            self.process = None
        self.pid_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """Kill -9, the way a crashed server goes away (fault tests)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
            self.pid_file.unlink(missing_ok=True)


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _terminate(pid: int, timeout: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zkserver", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start a server (installs ZooKeeper if missing)")
    start.add_argument("--port", type=int, default=2181)
    start.add_argument("--dir", type=Path, default=Path(".zkdrift/zookeeper"))
    start.add_argument("--test-mode", action="store_true", help="forceSync=no (tests only)")
    stop = sub.add_parser("stop", help="stop the server started with --dir")
    stop.add_argument("--dir", type=Path, default=Path(".zkdrift/zookeeper"))
    sub.add_parser("install", help="install Debian's zookeeper package if missing")
    status = sub.add_parser("status", help="is a server answering on --port")
    status.add_argument("--port", type=int, default=2181)
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            print(ensure_zookeeper_installed())
        elif args.command == "start":
            server = ZooKeeperServer(args.dir.resolve(), args.port, test_mode=args.test_mode)
            if _ruok(server.host, server.port):
                print(f"ZooKeeper already running on {server.connect_string}")
                return 0
            server.start()
            print(f"ZooKeeper running on {server.connect_string} (data in {args.dir})")
        elif args.command == "stop":
            ZooKeeperServer(args.dir.resolve(), 0).stop()
            print("ZooKeeper stopped")
        elif args.command == "status":
            up = _ruok("127.0.0.1", args.port)
            print("running" if up else "not running")
            return 0 if up else 1
    except ZooKeeperServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
