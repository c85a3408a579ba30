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

    # The example tree as it should be; registered and adopted as desired state once.
    client = KazooClient(hosts=hosts)
    client.start(timeout=15)
    try:
        hotfix = f"{ROOT}/search/prod/hotfix"
        if client.exists(hotfix):
            client.delete(hotfix)
    finally:
        client.stop()
        client.close()
    _zkdrift("seed", "--hosts", hosts, "--root", ROOT, "--overwrite", "--register", TREE, env=env)

    introduce_drift(hosts)
    print(
        "\nedited 4 nodes by hand: checkout replicas, billing log level, "
        "a password (redacted below), and a new hotfix node"
    )
    _zkdrift("diff", TREE, env=env)
    code = _zkdrift("run", "pipeline", "--tree", TREE, env=env, check=False)
    report = home / "reports" / f"{TREE}.html"
    print(
        f"""
Where to look
  terminal     the run summary above: snapshot, drift, plan (dry run) and report per tree
  report       {report}
               (over HTTP while `zkdrift serve` runs: http://localhost:8765/{TREE}.html)
  database     {(env.get("ZKDRIFT_DATABASE_URL") and "ZKDRIFT_DATABASE_URL") or home / "zkdrift.db"}
  history      . .venv/bin/activate && ZKDRIFT_HOME={home} zkdrift snapshots {TREE}
  plan/apply   ZKDRIFT_HOME={home} zkdrift plan {TREE}   (then: zkdrift apply {TREE} --yes)
  Prefect UI   prefect server start            (in another terminal; UI on http://127.0.0.1:4200)
               export PREFECT_API_URL=http://127.0.0.1:4200/api
               ZKDRIFT_HOME={home} zkdrift run pipeline   (the run appears in the UI)
               ZKDRIFT_HOME={home} zkdrift serve          (serves the scheduled deployments)
  ZooKeeper    {hosts}  (stop: scripts/zk stop --dir {home / "zookeeper"})"""
    )
    return code


if __name__ == "__main__":
    raise SystemExit(main())
