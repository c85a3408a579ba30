"""Memory does not grow with the tree: the commands that stream a tree out of the
store peak at about the same RSS at 100k nodes as at 25k.

The trees are recorded straight into an SQLite store (see
:mod:`tests.support.scale`); each command runs as a real subprocess and its own
peak RSS is read when it is reaped. The issue's bound: at 100k within 20% of 25k.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.db import make_app
from tests.support.scale import Measured, Seeded, run_measured, seed

SMALL, LARGE = 25_000, 100_000
CHANGES = 1_000


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple[Path, Seeded]]:
    out = {}
    for leaves in (SMALL, LARGE):
        home = tmp_path_factory.mktemp(f"scale-{leaves}")
        app = make_app(f"sqlite:///{home / 'zkdrift.sqlite'}", home)
        out[leaves] = (home, seed(app, "big", leaves, CHANGES))
        app.db.dispose()
    return out


def env_for(home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "ZKDRIFT_HOME": str(home),
        "ZKDRIFT_DATABASE_URL": f"sqlite:///{home / 'zkdrift.sqlite'}",
    }


def measure(
    stores: dict[int, tuple[Path, Seeded]], args: Callable[[Path, Seeded], list[str]]
) -> dict[int, Measured]:
    runs = {}
    for leaves, (home, seeded) in stores.items():
        runs[leaves] = run_measured(args(home, seeded), env_for(home), cwd=home)
    return runs


def assert_flat(runs: dict[int, Measured]) -> None:
    small, large = runs[SMALL].peak_rss_kib, runs[LARGE].peak_rss_kib
    assert large <= small * 1.2, (
        f"peak RSS {large} KiB at {LARGE:,} leaves, {small} KiB at {SMALL:,}"
    )


def test_a_drift_check_against_a_recorded_snapshot_peaks_at_the_same_memory(
    stores: dict[int, tuple[Path, Seeded]],
) -> None:
    runs = measure(stores, lambda _h, s: ["diff", s.name, "--snapshot", str(s.snapshot_id)])

    for run in runs.values():
        assert run.exit_code == 2, run.stderr.decode()  # differences found
        assert run.stdout.count(b"(changed, drift)") == CHANGES // 3 + 1
    assert_flat(runs)


def test_an_export_of_a_recorded_snapshot_peaks_at_the_same_memory(
    stores: dict[int, tuple[Path, Seeded]],
) -> None:
    runs = measure(stores, lambda h, s: ["export", s.name, "-o", str(h / "export.json")])

    for leaves, run in runs.items():
        assert run.exit_code == 0, run.stderr.decode()
        home, seeded = stores[leaves]
        assert (home / "export.json").read_bytes().count(b'"path": ') == seeded.nodes
    assert_flat(runs)


def test_a_desired_import_of_an_export_peaks_at_the_same_memory(
    stores: dict[int, tuple[Path, Seeded]],
) -> None:
    for home, seeded in stores.values():
        exported = run_measured(
            ["export", seeded.name, "-o", str(home / "to-import.json")], env_for(home), cwd=home
        )
        assert exported.exit_code == 0, exported.stderr.decode()

    runs = measure(
        stores, lambda h, s: ["desired", "import", s.name, str(h / "to-import.json"), "-m", "live"]
    )

    for leaves, run in runs.items():
        assert run.exit_code == 0, run.stderr.decode()
        assert f"{stores[leaves][1].nodes:,} entries".encode() in run.stdout
    assert_flat(runs)
