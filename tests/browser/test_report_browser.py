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


def test_a_diagnose_page_of_a_factory_model_in_the_browser(browser, tmp_path, monkeypatch):
    """Issue 27: the page of a model brought through ``--model package.module:factory`` renders: its figures
    load, the console is clean, the checks and the tables are there."""
    from landscape_core.cli.main import main
    (tmp_path / "my_nets.py").write_text("from landscape_core.models.networks import build_model\n\n\n"
                                         "def lenet1():\n    return build_model('lenet', 1)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    small = ["eps=0.1", "n_test=20", "pgd_steps=2", "pgd100_steps=2", "apgd_steps=2", "square_queries=5",
             "attack_grid.steps=2", "attack_grid.l2_steps=2", "masking.n_examples=10", "masking.iterations=[2, 3, 4]",
             "masking.sweep_steps=2", "masking.square_queries=5", "hessian_examples=10", "hessian_batches=2", "k=1",
             "n_random=1", "trace_samples=2", "slq_steps=3", "layer_steps=2", "cosine_examples=10", "repeats=1",
             "lipschitz_steps=1", "compare=0"]
    out = tmp_path / "page"
    assert main(["diagnose", "--model", "my_nets:lenet1", "--normalize", "mnist", "--out", str(out)]
                + [f"--set={s}" for s in small]) == 0
    browser.get((out / "index.html").as_uri())
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.alt, i.complete && i.naturalWidth > 0]);")
    assert len(images) == 2 and all(ok for _, ok in images), images
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
    text = browser.find_element("tag name", "body").text
    assert "Checks" in text and "the model is deterministic" in text and "std over batches" in text
