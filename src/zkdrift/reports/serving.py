"""The HTML reports over HTTP, so a link in the Prefect UI opens in a browser.

``zkdrift serve`` runs :class:`ReportServer` next to the deployments it
serves: it is the long-lived process that already sits beside the reports
directory (a volume under Docker). A ``file://`` link would not do: browsers
refuse to follow one from an ``http://`` page, and under Docker the path is
inside a container. Prefect artifacts hold markdown, tables and links, not
whole pages, so the page is served here and linked from there.

Links are built from ``ZKDRIFT_REPORTS_URL`` (default
``http://localhost:<ZKDRIFT_REPORTS_PORT>/``), so a reverse proxy or another
static host can front the same files.

The server answers ``GET``/``HEAD`` for ``/`` (an index of the reports) and
for ``/<name>.html`` files directly in the reports directory; nothing else,
no directory traversal, no other file types. Reports never hold a secret
value (they are rendered through the redactor), and the default address is
loopback.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import re
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from zkdrift.model import slug
from zkdrift.settings import Settings
from zkdrift.vocabulary import utc_text

log = logging.getLogger(__name__)

_REPORT_NAME = re.compile(r"^[A-Za-z0-9._-]+\.html$")


def report_url(settings: Settings, tree: str) -> str:
    """The link to a tree's latest report, as people open it."""
    return settings.reports_base_url + quote(f"{slug(tree)}.html")


def _index(directory: Path) -> bytes:
    reports = (
        sorted(p for p in directory.glob("*.html") if p.is_file()) if directory.is_dir() else []
    )
    rows = "".join(
        f'<tr><td><a href="{quote(p.name)}">{html.escape(p.stem)}</a></td>'
        f"<td>{utc_text(dt.datetime.fromtimestamp(p.stat().st_mtime, dt.UTC))}</td></tr>"
        for p in reports
    )
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><title>zkdrift reports</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2rem}"
        "td,th{padding:.3rem 1rem;text-align:left}</style></head><body>"
        "<h1>zkdrift reports</h1>"
        + (
            f"<table><tr><th>tree</th><th>rendered</th></tr>{rows}</table>"
            if reports
            else "<p>No report has been rendered yet.</p>"
        )
        + "</body></html>"
    )
    return body.encode("utf-8")


def _handler(directory: Path) -> type[BaseHTTPRequestHandler]:
    class ReportHandler(BaseHTTPRequestHandler):
        server_version = "zkdrift-reports"

        def _answer(self, send_body: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            if path == "/":
                body, kind = _index(directory), "text/html; charset=utf-8"
            else:
                name = path.removeprefix("/")
                file = directory / name
                if not _REPORT_NAME.match(name) or not file.is_file():
                    self.send_error(HTTPStatus.NOT_FOUND, "no such report")
                    return
                body, kind = file.read_bytes(), "text/html; charset=utf-8"
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-cache")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def do_GET(self) -> None:
            self._answer(send_body=True)

        def do_HEAD(self) -> None:
            self._answer(send_body=False)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("report server: " + format, *args)

    return ReportHandler


class ReportServer:
    """A background HTTP server for the reports directory."""

    def __init__(self, directory: Path, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.directory = directory
        self._server = ThreadingHTTPServer((host, port), _handler(directory))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="zkdrift-reports", daemon=True
        )

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> ReportServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def start_report_server(settings: Settings) -> ReportServer | None:
    """Serve ``settings.reports_dir`` on ``reports_bind:reports_port`` (None when the port is 0)."""
    if not settings.reports_port:
        return None
    server = ReportServer(
        settings.reports_dir, host=settings.reports_bind, port=settings.reports_port
    ).start()
    host, port = server.address
    log.info(
        "serving the reports in %s on http://%s:%d/ (links: %s)",
        settings.reports_dir,
        host,
        port,
        settings.reports_base_url,
    )
    return server
