"""The report server: the reports directory over HTTP, and nothing else."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from zkdrift.model import slug
from zkdrift.reports.serving import ReportServer, report_url
from zkdrift.settings import Settings


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "demo.html").write_text("<html><body>demo report</body></html>")
    (tmp_path / "secret.txt").write_text("not for the web")
    (reports / "notes.txt").write_text("not a report")
    server = ReportServer(reports, port=0).start()
    host, port = server.address
    try:
        yield f"http://{host}:{port}", reports
    finally:
        server.stop()


def get(url: str, method: str = "GET") -> tuple[int, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def test_a_report_is_served_as_html_and_listed_on_the_index(served: tuple[str, Path]) -> None:
    base, _ = served
    status, page = get(f"{base}/demo.html")
    assert status == 200 and "demo report" in page
    status, index = get(f"{base}/")
    assert status == 200 and 'href="demo.html"' in index and "UTC" in index
    assert get(f"{base}/demo.html", method="HEAD") == (200, "")


@pytest.mark.parametrize(
    "path", ["/../secret.txt", "/%2e%2e/secret.txt", "/notes.txt", "/missing.html", "/sub/x.html"]
)
def test_anything_but_a_report_in_the_directory_is_not_found(
    served: tuple[str, Path], path: str
) -> None:
    base, _ = served
    assert get(base + path)[0] == 404


def test_links_follow_the_configured_base_url(tmp_path: Path) -> None:
    default = Settings(home=tmp_path, reports_port=9000)
    proxied = Settings(home=tmp_path, reports_url="https://zk.example.com/reports")
    assert report_url(default, "Search.App") == f"http://localhost:9000/{slug('Search.App')}.html"
    assert report_url(proxied, "demo") == "https://zk.example.com/reports/demo.html"
