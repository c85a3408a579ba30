"""The end-to-end demo behind ``scripts/demo``.

Starts (or reuses) a local ZooKeeper, seeds the example configuration tree,
registers it, records its desired state, edits a few nodes by hand the way
drift happens, and runs the main job once. Everything lives in ``.zkdrift/``
of the working directory unless ``ZKDRIFT_HOME`` says otherwise.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from kazoo.client import KazooClient

from zkdrift.devtools.zkserver import ZooKeeperServer, _ruok, free_port
from zkdrift.examples import example_tree, seed

ROOT = "/zkdrift-demo"
TREE = "demo"


def _zkdrift(*args: str, env: dict[str, str], check: bool = True) -> int:
    print(f"\n$ zkdrift {' '.join(args)}", flush=True)
    proc = subprocess.run([sys.executable, "-m", "zkdrift", *args], env=env, check=False)
    if check and proc.returncode not in (0, 2):
        raise SystemExit(proc.returncode)
    return proc.returncode


def ensure_zookeeper(home: Path, port: int | None) -> str:
    port_file = home / "zookeeper.port"
    if port is None and port_file.exists():
        port = int(port_file.read_text())
        if _ruok("127.0.0.1", port):
            return f"127.0.0.1:{port}"
    if port is None:
        port = 2181 if not _ruok("127.0.0.1", 2181) and _port_free(2181) else free_port()
    if not _ruok("127.0.0.1", port):
        ZooKeeperServer(home / "zookeeper", port).start()
        print(
            f"started ZooKeeper on 127.0.0.1:{port} "
            f"(stop it with: scripts/zk stop --dir {home / 'zookeeper'})"
        )
    port_file.write_text(str(port))
    return f"127.0.0.1:{port}"


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def introduce_drift(hosts: str) -> None:
    """Edit live ZooKeeper the way an operator at 3 a.m. would."""
    client = KazooClient(hosts=hosts)
    client.start(timeout=15)
    try:
        client.set(f"{ROOT}/checkout/prod/replicas", b"12")
        client.set(f"{ROOT}/billing/prod/log_level", b"DEBUG")
        client.set(f"{ROOT}/auth/prod/db_password", b"rotated-by-hand")
        client.ensure_path(f"{ROOT}/search/prod/hotfix")
        client.set(f"{ROOT}/search/prod/hotfix", b'{"disable_spellcheck": true}')
    finally:
        client.stop()
        client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--port", type=int, default=None, help="ZooKeeper port (default 2181 or a free one)"
    )
    args = parser.parse_args(argv)
    home = Path(os.environ.get("ZKDRIFT_HOME", ".zkdrift")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, ZKDRIFT_HOME=str(home))
    hosts = ensure_zookeeper(home, args.port)

    client = KazooClient(hosts=hosts)
    client.start(timeout=15)
    try:
        seed(client, example_tree(ROOT), overwrite=True)
        hotfix = f"{ROOT}/search/prod/hotfix"
        if client.exists(hotfix):
            client.delete(hotfix)
    finally:
        client.stop()
        client.close()
    print(f"seeded the example tree {ROOT} on {hosts}")

    registered = subprocess.run(
        [sys.executable, "-m", "zkdrift", "tree", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    if f'"name": "{TREE}"' not in registered.stdout:
        _zkdrift("tree", "add", TREE, "--hosts", hosts, "--root", ROOT, env=env)
    _zkdrift("snapshot", TREE, env=env)
    introduce_drift(hosts)
    print("\nedited 4 nodes by hand (replicas, log level, a password, a new hotfix node)")
    _zkdrift("snapshot", TREE, env=env)
    _zkdrift("snapshots", TREE, env=env)
    _zkdrift("show", TREE, f"{ROOT}/checkout/prod", env=env)
    print(f"\ndatabase: {home / 'zkdrift.db'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
