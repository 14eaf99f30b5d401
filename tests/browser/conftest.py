"""Headless Chromium for the browser tests: Debian's chromium and chromium-driver, installed here when
missing (as root, through apt); a test is skipped, saying why, only where they cannot be installed."""
import shutil
import subprocess

import pytest


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


def _chrome(size: str = "1280,2000"):
    """A headless Chromium driven by selenium (closed networking: no background connections)."""
    webdriver = pytest.importorskip("selenium.webdriver")
    chromium, driver = _chromium()
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", f"--window-size={size}", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver), options=opts)


@pytest.fixture(scope="session")
def chrome():
    """``chrome(size)`` starts a headless Chromium (the caller quits it)."""
    return _chrome
