"""Shared benchmark plumbing: a throwaway ZooKeeper, a timer and the results table."""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kazoo.client import KazooClient

from zkdrift.devtools.zkserver import ZooKeeperServer, free_port


@contextmanager
def throwaway_zookeeper(test_mode: bool = True) -> Iterator[ZooKeeperServer]:
    """A standalone ZooKeeper on a free loopback port, data in a temp dir; always stopped.

    ``test_mode`` turns fsync off (``forceSync=no``): bulk creates run several times
    faster, which is what a benchmark of client-side work wants. Both contenders of a
    benchmark run against the same server, so the setting is fair to each.
    """
    data_dir = Path(tempfile.mkdtemp(prefix="zkdrift-bench-zk-"))
    server = ZooKeeperServer(data_dir=data_dir, port=free_port(), test_mode=test_mode)
    try:
        server.start()
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)


@contextmanager
def kazoo_client(hosts: str, timeout: float = 30.0) -> Iterator[KazooClient]:
    """A started kazoo client, stopped and closed on exit."""
    client = KazooClient(hosts=hosts, timeout=timeout)
    client.start(timeout=timeout)
    try:
        yield client
    finally:
        client.stop()
        client.close()


@dataclass
class Timing:
    """Wall-clock seconds of one ``timed()`` block (set when the block ends)."""

    seconds: float = 0.0


@contextmanager
def timed() -> Iterator[Timing]:
    """Measure a block's wall-clock time with ``time.perf_counter``.

    >>> with timed() as t:
    ...     pass
    >>> t.seconds >= 0
    True
    """
    timing = Timing()
    start = time.perf_counter()
    try:
        yield timing
    finally:
        timing.seconds = time.perf_counter() - start


@dataclass
class Row:
    """One benchmark result; either side may be missing (``None``) when not measured."""

    benchmark: str
    zkdrift_seconds: float | None
    peer_seconds: float | None
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        """peer / zkdrift: above 1 means zkdrift was faster by that factor."""
        if self.zkdrift_seconds is None or self.peer_seconds is None:
            return None
        if self.zkdrift_seconds <= 0:
            return None
        return self.peer_seconds / self.zkdrift_seconds


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(rows: Sequence[Row]) -> str:
    headers = ("benchmark", "zkdrift s", "zk-shell s", "peer/zkdrift", "notes")
    cells = [
        (
            r.benchmark,
            _fmt(r.zkdrift_seconds, ".2f"),
            _fmt(r.peer_seconds, ".2f"),
            _fmt(r.ratio, ".1f") + ("x" if r.ratio is not None else ""),
            r.notes,
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    numeric = (False, True, True, True, False)

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out.extend(line(c) for c in cells)
    return "\n".join(out)


def report(
    rows: Sequence[Row],
    json_path: Path | str | None = None,
    meta: dict[str, Any] | None = None,
) -> str:
    """Print the results table; with ``json_path``, also write rows and run metadata as JSON."""
    table = format_table(rows)
    print(table)
    if json_path is not None:
        payload = {
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "meta": meta or {},
            "results": [{**asdict(r), "ratio": r.ratio} for r in rows],
        }
        path = Path(json_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"results written to {path}")
    return table


def arg_parser(description: str) -> argparse.ArgumentParser:
    """Options every ``python -m bench.<name>`` accepts: tree shape, seed and output."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--services", type=int, default=40)
    parser.add_argument("--environments", type=int, default=5)
    parser.add_argument("--keys", type=int, default=92, help="leaf keys per service/environment")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument(
        "--hosts",
        default=None,
        help="use this ZooKeeper instead of starting a throwaway one (trees go under /bench-*)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    return parser


@contextmanager
def zookeeper_hosts(hosts: str | None = None, test_mode: bool = True) -> Iterator[str]:
    """``hosts`` when given (an existing server), else a throwaway server's connect string."""
    if hosts:
        yield hosts
        return
    with throwaway_zookeeper(test_mode=test_mode) as server:
        yield server.connect_string
