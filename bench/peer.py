"""Time zk-shell (the peer) doing what zkdrift does: export, diff and mirror a tree.

zk-shell runs in a subprocess, ``python -m zk_shell.cli --run-once "<cmd>" HOST:PORT``,
and each figure is the command's wall clock: interpreter start, connect, work, exit.
``time_zkshell_startup`` measures the fixed part (a ``ls /``) so it can be subtracted.

zk-shell reports copy failures on stdout and still exits 0 ("Copy failed; it may have
partially completed..."), so every run is checked for that text as well as for the
exit code, and the result itself is verified afterwards (outside the timed region).

Exact command forms used (zk-shell 1.3.4):

    cp <root> json://<abs path with / as !>/ true true true   # recursive overwrite async
    diff <path_a> <path_b>
    mirror <src> <dst> true false true                        # async, not verbose, no prompt

    python -m bench.peer        # measure all three on a 20k-node tree in a throwaway server
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from base64 import b64decode
from dataclasses import dataclass
from pathlib import Path

from bench.common import Row, kazoo_client, report, timed
from bench.treegen import TreeDiff, compare_trees, read_tree

ZKSHELL_REQUIREMENT = "zk-shell==1.3.4"
DEFAULT_TIMEOUT = 3600.0
# zk-shell's own summary after cp/mirror: "Copying took 1.23 secs".
_TOOK = re.compile(r"^(Copying|Mirroring) took ([0-9.]+) secs$", re.MULTILINE)
_FAILURE_MARKERS = (
    " failed; it may have partially completed",
    "Authentication failed",
    "doesn't exist",
    "Unknown command",
    "Traceback (most recent call last)",
)
# Characters that would change how zk-shell splits the command or parses a json:// URL.
_UNSAFE_IN_JSON_PATH = frozenset("!?#@ \t\n'\"\\")


class ZkShellError(RuntimeError):
    """zk-shell failed, reported a failure, or produced a result that does not check out."""


@dataclass(frozen=True)
class ZkShellRun:
    command: str
    seconds: float  # wall clock of the whole subprocess
    returncode: int
    stdout: str
    stderr: str

    @property
    def reported_seconds(self) -> float | None:
        """The time zk-shell itself printed for cp/mirror (work only, no start-up)."""
        match = _TOOK.search(self.stdout)
        return float(match.group(2)) if match else None


def zkshell_argv(hosts: str, command: str, connect_timeout: float = 30.0) -> list[str]:
    """The subprocess argv for one non-interactive zk-shell command."""
    return [
        sys.executable,
        "-m",
        "zk_shell.cli",
        "--connect-timeout",
        str(connect_timeout),
        "--run-once",
        command,
        hosts,
    ]


def run_zkshell(
    hosts: str, command: str, timeout: float = DEFAULT_TIMEOUT, check: bool = True
) -> ZkShellRun:
    """Run one zk-shell command, timing its wall clock; with ``check``, raise on failure."""
    argv = zkshell_argv(hosts, command)
    with timed() as t:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=False, errors="replace"
        )
    run = ZkShellRun(command, t.seconds, proc.returncode, proc.stdout, proc.stderr)
    if check:
        problem = next((m for m in _FAILURE_MARKERS if m in run.stdout + run.stderr), None)
        if run.returncode != 0 or problem:
            raise ZkShellError(
                f"zk-shell {command!r} failed (exit {run.returncode}): "
                f"{(run.stdout + run.stderr).strip()[-2000:]}"
            )
    return run


def json_url(file: Path | str, znode: str = "/") -> str:
    """zk-shell's JSON-file URL: ``json://!abs!path!to!file.json/<znode>``.

    The file's absolute path goes in the URL's host part with every ``/`` written as
    ``!``; the URL's path is the key prefix inside the file.
    """
    path = str(Path(file).resolve())
    unsafe = sorted(set(path) & _UNSAFE_IN_JSON_PATH)
    if unsafe:
        raise ValueError(f"zk-shell cannot address {path!r} in a json:// URL (has {unsafe})")
    return "json://" + path.replace("/", "!") + "/" + znode.strip("/")


def read_zkshell_json(file: Path | str) -> dict[str, bytes]:
    """A zk-shell JSON export as a tree-relative mapping (``/`` is the exported root).

    The file is a flat ``{path: {"content": base64 | null, "acls": [...]}}`` object.
    """
    raw = json.loads(Path(file).read_text())
    return {
        path: b"" if entry.get("content") is None else b64decode(entry["content"])
        for path, entry in raw.items()
    }


def zkshell_cp_json(hosts: str, root: str, out_file: Path | str) -> ZkShellRun:
    """Export ``root`` recursively to a JSON file with zk-shell and check every node is there.

    Runs ``cp <root> json://<file>/ true true true`` (recursive, overwrite, asynchronous).
    An existing ``out_file`` is removed first: zk-shell merges into what the file holds.
    """
    out = Path(out_file).resolve()
    out.unlink(missing_ok=True)
    run = run_zkshell(hosts, f"cp {root} {json_url(out)} true true true")
    if not out.is_file():
        raise ZkShellError(f"zk-shell cp reported success but wrote no {out}")
    exported = read_zkshell_json(out)
    with kazoo_client(hosts) as client:
        live = read_tree(client, root)
        live["/"] = client.get(root)[0]
    diff = compare_trees(live, exported)
    if diff.total:
        raise ZkShellError(
            f"zk-shell export of {root} differs from the live tree: {len(diff.removed)} "
            f"missing, {len(diff.added)} extra, {len(diff.changed)} different "
            f"(e.g. {(diff.removed + diff.added + diff.changed)[:3]})"
        )
    return run


def time_zkshell_cp_json(hosts: str, root: str, out_file: Path | str) -> float:
    """Wall-clock seconds of zk-shell exporting ``root`` to ``out_file`` (verified)."""
    return zkshell_cp_json(hosts, root, out_file).seconds


def parse_zkshell_diff(stdout: str) -> TreeDiff:
    """zk-shell ``diff`` output as a ``TreeDiff`` with tree-relative paths.

    ``-- p``: only in a; ``++ p``: only in b; ``-+ p``: different bytes ("/" is the roots).
    """
    changed: list[str] = []
    removed: list[str] = []
    added: list[str] = []
    buckets = {"-+": changed, "--": removed, "++": added}
    for line in stdout.splitlines():
        if not line.strip() or line.strip() == "Branches are equal.":
            continue
        mark, _, path = line.partition(" ")
        if mark not in buckets or not path:
            raise ZkShellError(f"unexpected zk-shell diff output line: {line!r}")
        buckets[mark].append("/" + path.lstrip("/"))
    return TreeDiff(tuple(sorted(changed)), tuple(sorted(removed)), tuple(sorted(added)))


def zkshell_diff(hosts: str, a: str, b: str) -> tuple[ZkShellRun, TreeDiff]:
    """Run ``diff <a> <b>``; returns the run and the differences it listed."""
    run = run_zkshell(hosts, f"diff {a} {b}")
    return run, parse_zkshell_diff(run.stdout)


def time_zkshell_diff(hosts: str, a: str, b: str, expected: TreeDiff | None = None) -> float:
    """Wall-clock seconds of zk-shell diffing ``a`` against ``b``.

    With ``expected`` (e.g. ``compare_trees(tree_a, tree_b)``), the listed differences
    must match it exactly.
    """
    run, found = zkshell_diff(hosts, a, b)
    if expected is not None and found != expected:
        raise ZkShellError(
            f"zk-shell diff listed {found.total} differences, expected {expected.total}: "
            f"changed {len(found.changed)}/{len(expected.changed)}, "
            f"removed {len(found.removed)}/{len(expected.removed)}, "
            f"added {len(found.added)}/{len(expected.added)}"
        )
    return run.seconds


def zkshell_mirror(hosts: str, src: str, dst: str) -> ZkShellRun:
    """Run ``mirror <src> <dst> true false true`` and check ``dst`` now equals ``src``.

    Mirror makes dst hold exactly src's nodes and bytes: it copies every node (read data
    and ACL, then exists/get/set or create on dst) and deletes what src lacks.
    """
    run = run_zkshell(hosts, f"mirror {src} {dst} true false true")
    with kazoo_client(hosts) as client:
        diff = compare_trees(read_tree(client, src), read_tree(client, dst))
    if diff.total:
        raise ZkShellError(f"after zk-shell mirror, {dst} still differs from {src}: {diff}")
    return run


def time_zkshell_mirror(hosts: str, src: str, dst: str) -> float:
    """Wall-clock seconds of zk-shell mirroring ``src`` onto ``dst`` (verified)."""
    return zkshell_mirror(hosts, src, dst).seconds


def time_zkshell_startup(hosts: str) -> float:
    """Wall-clock seconds of a trivial command (``ls /``): start-up and connect overhead."""
    return run_zkshell(hosts, "ls /").seconds


def main(argv: list[str] | None = None) -> int:
    import tempfile

    from bench.common import arg_parser, zookeeper_hosts
    from bench.treegen import delete_tree, generate_tree, load_tree, mutate

    parser = arg_parser("Time zk-shell's cp to JSON, diff and mirror on a generated tree")
    args = parser.parse_args(argv)
    tree = generate_tree(args.services, args.environments, args.keys, args.seed)
    changed = mutate(tree)
    expected = compare_trees(tree, changed)
    a, b = "/bench-peer/a", "/bench-peer/b"
    rows: list[Row] = []
    with zookeeper_hosts(args.hosts) as hosts:
        with kazoo_client(hosts) as client:
            delete_tree(client, "/bench-peer")
            with timed() as t_load:
                load_tree(client, a, tree)
            load_tree(client, b, changed)
        print(f"loaded {len(tree)} znodes in {t_load.seconds:.2f}s; diff has {expected.total}")
        rows.append(Row("zk-shell start-up (ls /)", None, time_zkshell_startup(hosts)))
        with tempfile.TemporaryDirectory(prefix="zkdrift-bench-") as tmp:
            cp = zkshell_cp_json(hosts, a, Path(tmp) / "export.json")
        rows.append(Row(f"export {len(tree)} nodes to JSON", None, cp.seconds, _own(cp)))
        diff_seconds = time_zkshell_diff(hosts, a, b, expected)
        rows.append(Row(f"diff ({expected.total} differences)", None, diff_seconds))
        mirror = zkshell_mirror(hosts, a, b)
        rows.append(Row("apply (mirror a onto b)", None, mirror.seconds, _own(mirror)))
        if args.hosts:  # a throwaway server takes its data with it
            with kazoo_client(hosts) as client:
                delete_tree(client, "/bench-peer")
    report(rows, args.json, meta={"nodes": len(tree), "differences": expected.total})
    return 0


def _own(run: ZkShellRun) -> str:
    own = run.reported_seconds
    return "" if own is None else f"zk-shell's own timer: {own:.2f}s"


if __name__ == "__main__":
    raise SystemExit(main())
