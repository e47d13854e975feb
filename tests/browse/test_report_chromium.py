"""The report in a real headless Chromium, spoken to over the DevTools protocol: it loads from
file:// without console errors, draws boxes over the thumbnails, shows hostile strings as text,
pages through the gallery; a screenshot is saved for a person to look at."""

import os

import pytest

pytest.importorskip("websocket", reason="websocket-client is missing: pip install -e '.[dev]'")

from cdp_client import Chromium, find_chromium  # noqa: E402 - needs websocket-client
from offline_run import HOSTILE, IMG_NAME  # noqa: E402

CHROMIUM = find_chromium()
if CHROMIUM is None and os.environ.get("REQUIRE_CHROMIUM"):
    # CI installs Chromium: there, a missing browser is a failure, not a skip.
    raise RuntimeError("REQUIRE_CHROMIUM is set but no chromium was found")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed: `make system-deps` installs it (apt-get install chromium)",
)

FIRST_CARD = "document.querySelector('#cards article')"


@pytest.fixture(scope="module")
def page(report):
    with Chromium(CHROMIUM, width=1300, height=1000) as browser:
        browser.open(report.as_uri())
        yield browser


def test_page_loads_without_console_errors_and_thumbnails_load(page):
    assert page.errors() == []
    loaded = page.evaluate("[...document.images].map(i => i.complete && i.naturalWidth > 0)")
    assert loaded and all(loaded)


def test_boxes_are_drawn_over_the_thumbnails_of_a_clip_with_faces(page):
    # Kept clips come first: page 1 is a signer, detected in every sampled frame.
    faces = page.evaluate(
        f"{FIRST_CARD}.querySelectorAll('.frame > img + svg.boxes rect.face').length"
    )
    frames = page.evaluate(f"{FIRST_CARD}.querySelectorAll('.frame > img').length")
    assert frames > 0 and faces >= 1
    # The overlay covers its image exactly, so normalised boxes land on the picture.
    same = page.evaluate(
        f"[...{FIRST_CARD}.querySelectorAll('.frame')].filter(f => f.querySelector('svg'))"
        ".every(f => { const a = f.querySelector('img').getBoundingClientRect(),"
        " b = f.querySelector('svg').getBoundingClientRect();"
        " return Math.abs(a.width - b.width) < 1 && Math.abs(a.height - b.height) < 1; })"
    )
    assert same


def test_speech_timeline_transcript_and_skeleton_of_the_talking_head(page):
    page.evaluate("document.getElementById('filter').value = 'speech';"
                  "document.getElementById('filter').dispatchEvent(new Event('change'))")  # fmt: skip
    assert page.evaluate("document.getElementById('page-info').textContent").startswith(
        "page 1 of 1 "
    )
    assert page.evaluate(f"{FIRST_CARD}.querySelectorAll('svg.timeline rect.speech').length") >= 1
    assert page.evaluate(f"{FIRST_CARD}.querySelectorAll('.frame svg.boxes line.bone').length") >= 1
    text = page.evaluate(f"{FIRST_CARD}.textContent")
    assert "market" in text and "lip sync 0." in text and "framing close_up" in text
    assert page.errors() == []


def test_hostile_strings_are_text_not_markup(page):
    page.evaluate("document.getElementById('filter').value = 'kept';"
                  "document.getElementById('filter').dispatchEvent(new Event('change'))")  # fmt: skip
    texts = []
    for _ in range(page.evaluate("document.querySelectorAll('#cards article').length + 5")):
        texts.append(page.evaluate(f"{FIRST_CARD}.textContent"))
        if page.evaluate("document.getElementById('next').disabled"):
            break
        page.evaluate("document.getElementById('next').click()")
    shown = "\n".join(texts)
    assert HOSTILE.replace("\x1b", "\\x1b") in shown  # the caption, verbatim as text
    assert "b>.mp4" in shown and "<b>x</b>.mp4" in shown  # the file name and its path
    assert page.evaluate("document.querySelectorAll('b').length") == 0
    assert page.evaluate("document.scripts.length") == 2  # the data and the gallery script
    assert IMG_NAME in page.evaluate("document.getElementById('sources').textContent")
    assert page.evaluate("[...document.images].every(i => i.src.includes('/thumbs/'))")
    assert page.errors() == []  # nothing ran: console.error would have been recorded


def test_pagination_and_screenshot(page, tmp_path_factory):
    page.evaluate("document.getElementById('filter').value = 'all';"
                  "document.getElementById('filter').dispatchEvent(new Event('change'))")  # fmt: skip
    first = page.evaluate("document.getElementById('page-info').textContent")
    assert first.startswith("page 1 of ") and not first.startswith("page 1 of 1 ")
    page.evaluate("document.getElementById('next').click()")
    assert page.evaluate("document.getElementById('page-info').textContent").startswith(
        "page 2 of "
    )
    page.evaluate("document.getElementById('prev').click()")
    path = page.screenshot(tmp_path_factory.mktemp("screenshot") / "report.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    print(f"\nreport screenshot: {path}")
    assert page.errors() == []
