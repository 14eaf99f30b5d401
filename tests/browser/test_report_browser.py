"""The smoke report in headless Chromium: every image loads, the console has no error, a screenshot.

Run by ``make test`` after nbval (which leaves outputs/smoke/{claims,figures,tables}) and
``python -m landscape_core report --profile smoke`` (Chromium: ``conftest.py``)."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "outputs" / "smoke" / "report"


@pytest.fixture(scope="module")
def browser(chrome):
    b = chrome()
    yield b
    b.quit()


def test_report_exists():
    assert (REPORT / "index.html").exists(), "run `python -m landscape_core report --profile smoke` first"


def test_images_load_console_clean_and_screenshot(browser):
    browser.get((REPORT / "index.html").as_uri())
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.alt, i.complete && i.naturalWidth > 0]);")
    assert len(images) >= 10, images
    assert [alt for alt, ok in images if not ok] == []
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    assert browser.find_element("id", "claims").text == "Claims"
    assert browser.save_screenshot(str(REPORT / "screenshot.png"))
    assert (REPORT / "screenshot.png").stat().st_size > 10_000


def test_every_claim_links_to_an_existing_cell():
    index = (REPORT / "index.html").read_text()
    links = re.findall(r'href="notebooks/([^"#]+)#cell-id=([^"]+)"', index)
    assert len(links) >= 20
    for page, cell in links:
        assert f'id="cell-id={cell}"' in (REPORT / "notebooks" / page).read_text(), (page, cell)
