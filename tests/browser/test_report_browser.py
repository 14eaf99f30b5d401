"""The smoke report in headless Chromium: every image loads, the console has no error, a screenshot.

Run by ``make test`` after nbval (which leaves outputs/smoke/{claims,figures,tables}) and
``python -m landscape_core report --profile smoke``.  Debian's chromium and chromium-driver are
installed here when missing (as root, through apt); the test is skipped, saying why, only where they
cannot be installed."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "outputs" / "smoke" / "report"


def _chromium() -> tuple[str, str]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver) and shutil.which("apt-get"):
        env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        try:
            subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True, env=env, timeout=600)
            subprocess.run(["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"], check=True,
                           capture_output=True, env=env, timeout=900)
        except (subprocess.SubprocessError, OSError) as err:
            pytest.skip(f"Debian's chromium / chromium-driver are missing and could not be installed: {err}")
        chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("chromium and chromedriver are not installed and apt-get is not available")
    return chromium, driver


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    chromium, driver = _chromium()
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,2000"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    b = webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver), options=opts)
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
