"""Full-page screenshots of HTML files in headless Chromium, to see reports as people do.

:func:`screenshot` drives Debian's ``chromium`` over the DevTools protocol on
a pipe (``--remote-debugging-pipe``: no port, no extra Python package): it
loads the page at a given width, measures the whole page and captures it,
however long. :func:`ensure_chromium` finds the browser, installing the
``chromium`` package with apt-get when it is missing and this process may.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Never taller than this many CSS pixels (Chromium's own limit on a capture is 16,384).
MAX_HEIGHT = 16_000


class BrowserError(RuntimeError):
    """No headless browser, or it failed to render the page."""


def find_chromium() -> str | None:
    """``$ZKDRIFT_CHROMIUM``, else the first Chromium or Chrome on PATH."""
    explicit = os.environ.get("ZKDRIFT_CHROMIUM")
    if explicit:
        return shutil.which(explicit) or (explicit if Path(explicit).is_file() else None)
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def ensure_chromium() -> str:
    """The Chromium to use; installs Debian's ``chromium`` with apt-get when missing
    (as root). Raises :class:`BrowserError` saying what to install otherwise."""
    found = find_chromium()
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        raise BrowserError(
            "no Chromium found: install it (Debian: 'sudo apt-get install -y chromium') "
            "or point ZKDRIFT_CHROMIUM at a Chromium or Chrome binary"
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # Wait for another apt-get (a parallel test worker, say) instead of failing on its lock.
    install = [apt, "-o", "DPkg::Lock::Timeout=600", "install", "-y", "--no-install-recommends"]
    install.append("chromium")
    if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
        update = [apt, "-o", "DPkg::Lock::Timeout=600", "update"]
        subprocess.run(update, env=env, capture_output=True, check=False)
        done = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BrowserError(f"apt-get install chromium failed: {done.stderr[-500:]}")
    found = find_chromium()
    if found is None:
        raise BrowserError("apt-get installed chromium, but no chromium is on PATH")
    return found


class _Pipe:
    """The DevTools protocol over Chromium's pipe: NUL-separated JSON messages."""

    def __init__(self, proc: subprocess.Popen[bytes], to_browser: int, from_browser: int) -> None:
        self.proc = proc
        self.to_browser = to_browser
        self.from_browser = from_browser
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("Chromium did not answer in time")
            ready, _w, _x = select.select([self.from_browser], [], [], left)
            if ready:
                chunk = os.read(self.from_browser, 1 << 20)
                if not chunk:
                    raise BrowserError(f"Chromium exited (status {self.proc.poll()})")
                self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        session: str | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error'].get('message', reply['error'])}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            if "method" in reply:
                self.events.append(reply)

    def wait_event(self, method: str, *, session: str, timeout: float = 30.0) -> None:
        for n, event in enumerate(self.events):
            if event["method"] == method and event.get("sessionId") == session:
                del self.events[n]
                return
        deadline = time.monotonic() + timeout
        while True:
            event = self._read(deadline)
            if event.get("method") == method and event.get("sessionId") == session:
                return


def _high(fd: int) -> int:
    """A copy of ``fd`` numbered 10 or above (clear of the 3 and 4 the child needs)."""
    return fcntl.fcntl(fd, fcntl.F_DUPFD, 10)


@dataclass(frozen=True)
class Capture:
    """A full-page screenshot: the PNG, the page's size in CSS pixels, and what
    ``script`` evaluated to in the page (None without one)."""

    png: Path
    width: int
    height: int
    value: Any = None


def screenshot(
    page: Path,
    output: Path,
    *,
    width: int = 1400,
    chromium: str | None = None,
    timeout: float = 60.0,
) -> Path:
    """A full-page PNG of the HTML file ``page``, ``width`` CSS pixels wide.

    Returns ``output``. Raises :class:`BrowserError` when no browser is found or
    the page cannot be rendered.
    """
    return capture(page, output, width=width, chromium=chromium, timeout=timeout).png


def capture(
    page: Path,
    output: Path,
    *,
    width: int = 1400,
    chromium: str | None = None,
    timeout: float = 60.0,
    script: str | None = None,
) -> Capture:
    """:func:`screenshot`, also evaluating the JavaScript expression ``script`` in the
    loaded page (before the capture) and returning its value."""
    binary = chromium or ensure_chromium()
    url = Path(page).resolve().as_uri()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    commands_r, commands_w = os.pipe()  # we write, Chromium reads on fd 3
    replies_r, replies_w = os.pipe()  # Chromium writes on fd 4, we read
    child_in, child_out = _high(commands_r), _high(replies_w)
    for fd in (commands_r, replies_w):
        os.close(fd)

    def plumb() -> None:  # in the child, before exec
        os.dup2(child_in, 3)
        os.dup2(child_out, 4)

    with tempfile.TemporaryDirectory(prefix="zkdrift-chromium-") as profile:
        args = [
            binary,
            "--headless",
            "--disable-gpu",
            "--hide-scrollbars",
            "--mute-audio",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-dev-shm-usage",
            "--remote-debugging-pipe",
            f"--user-data-dir={profile}",
            *(["--no-sandbox"] if os.geteuid() == 0 else []),
            "about:blank",
        ]
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(3, 4),
            preexec_fn=plumb,
        )
        os.close(child_in)
        os.close(child_out)
        pipe = _Pipe(proc, commands_w, replies_r)
        try:
            target = pipe.call("Target.createTarget", {"url": "about:blank"}, timeout=timeout)
            session = pipe.call(
                "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
            )["sessionId"]
            pipe.call("Page.enable", session=session)
            metrics = {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False}
            pipe.call("Emulation.setDeviceMetricsOverride", metrics, session=session)
            pipe.call("Page.navigate", {"url": url}, session=session)
            pipe.wait_event("Page.loadEventFired", session=session, timeout=timeout)
            value = None
            if script is not None:
                evaluated = pipe.call(
                    "Runtime.evaluate",
                    {"expression": script, "returnByValue": True},
                    session=session,
                )
                if "exceptionDetails" in evaluated:
                    raise BrowserError(f"the script failed: {evaluated['exceptionDetails']}")
                value = evaluated.get("result", {}).get("value")
            layout = pipe.call("Page.getLayoutMetrics", session=session)
            size = layout.get("cssContentSize") or layout["contentSize"]
            height = min(int(size["height"]) + 1, MAX_HEIGHT)
            pipe.call(
                "Emulation.setDeviceMetricsOverride",
                {**metrics, "height": height},
                session=session,
            )
            shot = pipe.call(
                "Page.captureScreenshot",
                {
                    "format": "png",
                    "captureBeyondViewport": True,
                    "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
                },
                session=session,
                timeout=timeout,
            )
            output.write_bytes(base64.b64decode(shot["data"]))
            result = Capture(output, int(size["width"]), height, value)
            with contextlib.suppress(BrowserError):  # it may close before it answers
                pipe.call("Browser.close", timeout=5)
        finally:
            os.close(commands_w)
            os.close(replies_r)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return result


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG file, from its header."""
    header = Path(path).read_bytes()[:24]
    if header[:8] != b"\x89PNG\r\n\x1a\n":
        raise BrowserError(f"{path} is not a PNG file")
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def main() -> int:
    """``python -m zkdrift.devtools.browser``: find or install Chromium, print its path."""
    try:
        print(ensure_chromium())
    except BrowserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
