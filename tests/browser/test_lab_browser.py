"""``make lab`` as a researcher meets it, in headless Chromium driving JupyterLab.

On a scratch copy of the repository's tracked files (a git work tree of its own, with the run store
that nbval left, so Run All analyses rather than trains): ``python -m landscape_core lab`` (what
``make lab`` runs); for every notebook, double-click its ``.py`` in the file browser -> a notebook with
the reference's outputs and no kernel prompt; Run All -> no error; move one control of its interactive
view -> the figure changes; save without an edit -> ``git status --short`` is empty, with and without
the nbstripout filter.  Run All times and a screenshot per notebook land in ``outputs/smoke/lab/``."""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "outputs" / "smoke" / "lab"
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.py")
                   if not os.environ.get("LAB_NOTEBOOKS") or p.stem[:2] in os.environ["LAB_NOTEBOOKS"].split(","))
TOKEN = "landscape-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _git(repo: Path, *args: str, **kw) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, **kw).stdout


def _wait(fn, timeout: float, what: str, step: float = 0.5):
    end = time.time() + timeout
    last = None
    while time.time() < end:
        try:
            value = fn()
            if value:
                return value
        except AssertionError:
            raise
        except Exception as err:         # the page is still loading
            last = err
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} ({last})")


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """The tracked files in a fresh git work tree (no nbstripout filter configured), plus nbval's store."""
    repo = tmp_path_factory.mktemp("lab") / "repo"
    files = _git(ROOT, "ls-files", "-z").split("\0")
    for name in filter(None, files):
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    store = ROOT / "outputs" / "smoke" / "runs"
    if store.is_dir():
        shutil.copytree(store, repo / "outputs" / "smoke" / "runs", ignore=shutil.ignore_patterns("*.lock"))
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.email=test@example.org", "-c", "user.name=test", "commit", "-q", "-m", "copy")
    return repo


@pytest.fixture(scope="module")
def lab(repo, tmp_path_factory):
    """``python -m landscape_core lab`` on the copy, with Lab's user settings and workspaces in a scratch folder."""
    port = _free_port()
    home = tmp_path_factory.mktemp("labhome")
    env = {**os.environ, "LANDSCAPE_ROOT": str(repo), "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"), "JUPYTER_RUNTIME_DIR": str(home / "runtime")}
    env.pop("LANDSCAPE_INTERACTIVE", None)
    log = open(home / "lab.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "landscape_core", "lab", "--no-browser", f"--port={port}",
                             f"--IdentityProvider.token={TOKEN}", "--LabApp.expose_app_in_browser=True"],
                            cwd=repo, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        def started():
            assert proc.poll() is None, f"JupyterLab exited:\n{(home / 'lab.log').read_text()[-3000:]}"
            return "is running at" in (home / "lab.log").read_text()
        _wait(started, 90, "JupyterLab to start")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser(chrome):
    b = chrome("1400,1000")
    yield b
    b.quit()


APP = "window.jupyterapp"
CURRENT = f"{APP}.shell.currentWidget"
STATE = f"""
const w = {CURRENT};
if (!w || !w.content || !w.content.model) return null;
const m = w.content.model;
let outputs = 0, errors = 0, running = 0, unrun = 0;
for (let i = 0; i < m.cells.length; i++) {{
  const c = m.cells.get(i);
  if (c.type !== 'code') continue;
  if (!c.executionCount) unrun++;
  outputs += c.outputs.length;
  for (let j = 0; j < c.outputs.length; j++) if (c.outputs.get(j).type === 'error') errors++;
}}
running = document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-InputPrompt').length
  ? Array.from(document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-InputPrompt'))
      .filter(p => p.textContent.includes('*')).length : 0;
return {{path: w.context.path, outputs, errors, running, unrun,
        kernel: w.sessionContext.session ? w.sessionContext.session.kernel.status : 'none',
        dialogs: document.querySelectorAll('.jp-Dialog').length}};
"""


def _open(browser, url: str, name: str) -> dict:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    browser.get(f"{url}/lab/tree/notebooks?token={TOKEN}")
    item = _wait(lambda: [e for e in browser.find_elements(By.CSS_SELECTOR, ".jp-DirListing-item")
                          if e.text.strip().startswith(f"{name}.py") or
                          e.get_attribute("title") and f"{name}.py" in e.get_attribute("title")][0],
                 60, f"{name}.py in the file browser")
    ActionChains(browser).double_click(item).perform()
    return _wait(lambda: (s := browser.execute_script(STATE)) and s["path"].endswith(f"{name}.py") and s["outputs"]
                 and s, 60, f"{name}.py to open as a notebook with outputs")


def _view_image(browser):
    """The figure of the last interactive view (its control container and the image it drew)."""
    return browser.execute_script("""
const views = document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .widget-interact');
if (!views.length) return null;
const v = views[views.length - 1];
const img = v.querySelector('img');
return img ? img.src.length + ':' + img.src.slice(-200) : null;""")


def _move_control(browser) -> str:
    """Change the first control of the last interactive view: another option of a drop-down, or a slider
    typed to another value in its readout.  Returns what was done."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select
    view = browser.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel:not(.lm-mod-hidden) .widget-interact")[-1]
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", view)
    selects = view.find_elements(By.CSS_SELECTOR, "select")
    if selects:
        s = Select(selects[0])
        current = s.first_selected_option.text
        other = next(o.text for o in s.options if o.text != current)
        s.select_by_visible_text(other)
        return f"drop-down {current} -> {other}"
    readout = view.find_elements(By.CSS_SELECTOR, ".widget-readout")[0]
    value = float(readout.text)
    new = value / 2 if value else 0.1
    readout.click()
    readout.send_keys(Keys.CONTROL, "a")
    readout.send_keys(f"{new:g}", Keys.ENTER)
    return f"slider {value:g} -> {new:g}"


def test_every_notebook_opens_runs_redraws_and_saves_without_a_change(lab, repo, browser):
    OUT.mkdir(parents=True, exist_ok=True)
    times = {}
    for name in NOTEBOOKS:
        try:
            _check_notebook(browser, lab, repo, name, times)
        except Exception:
            browser.save_screenshot(str(OUT / f"failed_{name}.png"))
            raise
    (OUT / "run_all_seconds.json").write_text(json.dumps(times, indent=1) + "\n")


def _check_notebook(browser, lab, repo, name, times):
    state = _open(browser, lab, name)
    assert state["dialogs"] == 0, f"{name}: a dialog (kernel prompt?) opened with the notebook"
    reference = state["outputs"]
    start = time.time()
    # started here, polled below: one WebDriver call may not wait longer than its HTTP timeout (120 s)
    browser.execute_script(f"""window.__runAll = 'running';
        {CURRENT}.sessionContext.ready
          .then(() => {APP}.commands.execute('notebook:run-all-cells'))
          .then(r => window.__runAll = String(r), e => window.__runAll = 'error: ' + e);""")
    ran = _wait(lambda: (r := browser.execute_script("return window.__runAll")) != "running" and r, 1200,
                f"{name}: Run All to finish", step=1.0)
    times[name] = round(time.time() - start, 1)
    assert ran == "true", f"{name}: Run All did not complete ({ran})"
    state = browser.execute_script(STATE)
    assert state["errors"] == 0, f"{name}: Run All left {state['errors']} error output(s)"
    assert state["unrun"] == 0, f"{name}: {state['unrun']} code cell(s) did not run"
    before = _wait(lambda: _view_image(browser), 60, f"{name}: its interactive view's figure")
    done = _move_control(browser)
    _wait(lambda: (img := _view_image(browser)) and img != before, 60, f"{name}: the figure to change ({done})")
    browser.save_screenshot(str(OUT / f"{name}.png"))
    browser.execute_script(f"return {APP}.commands.execute('docmanager:save')")
    time.sleep(2)
    status = _git(repo, "status", "--short")
    assert status == "", f"{name}: saving without an edit changed tracked files:\n{status}{_git(repo, 'diff')[:3000]}"
    clean = (f"'{sys.executable}' -m nbstripout --keep-output --keep-count --extra-keys "
             f"'metadata.papermill cell.metadata.papermill cell.metadata.execution metadata.widgets "
             f"metadata.language_info cell.metadata.collapsed'")
    status = _git(repo, "-c", f"filter.nbstripout.clean={clean}", "-c", "filter.nbstripout.smudge=cat",
                  "status", "--short")
    assert status == "", f"{name}: with the git filter, saving changed tracked files:\n{status}"
    browser.execute_async_script(f"""const done = arguments[arguments.length - 1];
        {CURRENT}.sessionContext.shutdown().then(() => done(true), () => done(false));""")
    browser.execute_script(f"return {APP}.commands.execute('application:close-all')")
    time.sleep(1)
    print(f"{name}: {reference} reference outputs, Run All {times[name]} s, {done}")
