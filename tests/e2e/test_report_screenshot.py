"""The report as people see it: rendered for a drifted tree, opened in headless
Chromium (installed when missing) and captured full-page."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from PIL import Image

from tests.support.data import SECRET_1, SECRET_2, build_history
from tests.support.db import make_app
from zkdrift.devtools.browser import capture, ensure_chromium, png_size
from zkdrift.reports.render import render_report

# Table boxes whose content is wider than the box (they would scroll sideways).
OVERFLOWING = (
    "Array.from(document.querySelectorAll('.zk-scroll'))"
    ".filter(e => e.scrollWidth > e.clientWidth + 1).length"
)
VERDICT_RED = (0xFD, 0xEC, 0xEA)  # the out-of-sync banner's background


@pytest.fixture(scope="module")
def chromium() -> str:
    return ensure_chromium()


def _text(page: str) -> str:
    page = re.sub(r"<(head|style|script)\b.*?</\1>", " ", page, flags=re.S | re.I)
    page = re.sub(r"</?(span|strong|em|code|wbr|a)\b[^>]*>", "", page)
    page = re.sub(r"<[^>]+>", " ", page)
    return re.sub(r"\s+", " ", html.unescape(page).replace("\xa0", " "))


@pytest.mark.timeout(120)
def test_a_drifted_trees_report_renders_in_a_real_browser(
    zk: KazooClient, zk_chroot: str, sqlite_url: str, tmp_path: Path, chromium: str
) -> None:
    app = make_app(sqlite_url, tmp_path / "home")
    try:
        build_history(app, zk, zk_chroot)
        page = render_report(app, "app", output=tmp_path / "app.html")
    finally:
        app.close()

    shot = capture(page, tmp_path / "app.png", width=1400, chromium=chromium, script=OVERFLOWING)

    assert png_size(shot.png) == (1400, shot.height)
    assert 2_000 < shot.height < 16_000  # the whole page: sections, tables and charts
    assert shot.png.stat().st_size > 50_000  # not a blank page
    assert shot.value == 0  # no table is cut off or scrolls at 1,400 pixels
    with Image.open(shot.png) as image:  # the verdict banner is at the top, in red
        top = image.convert("RGB").crop((0, 0, 1400, 400))
        assert VERDICT_RED in {color for _n, color in top.getcolors(1_000_000) or []}
    text = _text(page.read_text(encoding="utf-8"))
    assert "OUT OF SYNC: 1 path since " in text
    assert "run zkdrift apply app --yes or zkdrift adopt app" in text
    # What drifted, desired -> live, for a path that is not secret.
    assert re.search(r"/app/search/size changed drift 10 20 \d{4}-\d\d-\d\d", text)
    assert "redacted hmac:" in text
    for secret in (SECRET_1, SECRET_2):
        assert secret.decode() not in page.read_text(encoding="utf-8")
    assert "Traceback" not in text
