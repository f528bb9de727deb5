"""The notebooks as a learner sees them: JupyterLab in headless Chromium.

A JupyterLab server (this virtualenv, free port, random token) serves a temporary folder
holding the learner's workspace (``python -m course.workspace``: released notebooks, no
solutions, no hidden tests) and the solution notebooks (source notebooks minus the hidden
grading calls). Debian's chromium (``/usr/bin/chromium``, driven by Playwright; Playwright's
own browsers are never downloaded) opens each notebook and runs it:

- released, cell by cell (Run All would stop at the first unfinished exercise): every cell
  runs, the only errors are ``NotImplementedError``, no stderr, every figure shown has
  pixels, and ``check("<section>")`` prints its table with all of the section's checks;
- with solutions, with Run All: no error and no stderr output at all, figures render, and
  every self-check table says "N of N checks pass.";
- the ungraded notebooks as released, with Run All: every cell runs without an error or stderr
  output and the figures render (the extrapolation lab, notebook 09, opens on its cached results);
- a learner who borrows every function with ``use_reference`` and writes one answer: only the
  grade cells fail, and ``reveal`` shows the model answer under the written answer only;
- no notebook writes a file beside itself but its written answers' answers.pdf;
- nbgrader's Validate toolbar button on a released notebook reports the failing cells, and
  on the same notebook filled in (solutions and written answers) "Success!";
  ``nbgrader validate`` on the command line says the same for another notebook (it exits 0
  either way: we read its output).

Screenshots of every notebook go to $COURSE_SCREENSHOTS (or a pytest temporary folder);
the folder is printed at the end of the run. Skipped when /usr/bin/chromium is absent.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course.exercises import NOTEBOOKS
from course.learner.selfcheck import BORROWED
from course.learner.visible_checks import checks_for
from course.learner.workspace import UNGRADED_NOTEBOOKS
from tests.browser_support import (CHROMIUM, JupyterLab, click_validate, close_notebook, launch_chromium,
                                   run_notebook, strip_hidden_tests)
from tests.conftest import fill_with_solutions, with_references

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = {name: section for section, name in NOTEBOOKS.items()
            if (ROOT / "source_notebooks" / name / f"{name}.ipynb").exists()}
EXPECTED = "NotImplementedError"
VALIDATE_NOTEBOOK = "07_alibi"      # the notebook whose Validate button is pressed
CLI_VALIDATE_NOTEBOOK = "06_rope"   # the notebook given to `nbgrader validate`
BORROWED_NOTEBOOK = "08_scaling"    # as released, every function borrowed with use_reference, one answer written
WRITTEN = ("Recomputing the table changes the rotation of keys already in the cache, so old keys were "
           "rotated with one base and new queries with another, and their scores no longer depend only "
           "on the offset.")  # a learner's own few sentences, enough for reveal
LAB_NOTEBOOK = "09_extrapolation_lab"  # the ungraded notebook that runs the learner's functions
LAB_FIGURE_CELLS = 10            # notebook 09: training curves, length, position, passkey; attention maps, reach,
#                                 the learned table, pair energy; the learner's functions in the trained models
NOTEBOOK_SECONDS = 600          # per notebook, generous: the machine may be shared

pytestmark = pytest.mark.xdist_group("browser")  # one JupyterLab server and browser per run


def source_path(name: str) -> Path:
    return ROOT / "source_notebooks" / name / f"{name}.ipynb"


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory, pytestconfig):
    folder = Path(os.environ["COURSE_SCREENSHOTS"]) if os.environ.get("COURSE_SCREENSHOTS") \
        else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    yield folder
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None and any(folder.iterdir()):
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\nbrowser screenshots: {folder}")


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """root/released: the learner's workspace; root/solved: notebooks with solutions;
    root/filled: released notebooks whose answer cells hold the solutions."""
    if not SECTIONS:
        pytest.skip("no source notebooks yet")
    root = tmp_path_factory.mktemp("lab-root")
    done = subprocess.run([sys.executable, "-m", "course.workspace", "--dir", str(root / "released")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"course.workspace failed:\n{done.stdout}\n{done.stderr}"
    for sub in ("solved", "filled", "borrowed"):
        (root / sub).mkdir()
    borrowed = with_references(nbformat.read(root / "released" / f"{BORROWED_NOTEBOOK}.ipynb", as_version=4),
                               SECTIONS[BORROWED_NOTEBOOK])
    answer = next(c for c in borrowed.cells if any(t.startswith("manual:") for t in c.metadata.get("tags", [])))
    answer.source = WRITTEN
    nbformat.write(borrowed, root / "borrowed" / f"{BORROWED_NOTEBOOK}.ipynb")
    for name in SECTIONS:
        released = root / "released" / f"{name}.ipynb"
        assert released.exists(), f"the workspace has no {released.name}:\n{done.stdout}"
        strip_hidden_tests(source_path(name), root / "solved" / f"{name}.ipynb")
        fill_with_solutions(released, source_path(name), root / "filled" / f"{name}.ipynb")
    return root


@pytest.fixture(scope="module")
def chromium():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (Debian: apt-get install chromium); .ci/run installs it")
    return CHROMIUM


@pytest.fixture(scope="module")
def lab(chromium, course, tmp_path_factory):
    with JupyterLab(course, tmp_path_factory.mktemp("lab-home")) as server:
        yield server


@pytest.fixture(scope="module")
def page(lab, tmp_path_factory):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a test extra: bin/setup dev")
    with sync_api.sync_playwright() as playwright:
        context = launch_chromium(playwright, tmp_path_factory.mktemp("chromium") / "profile")
        context.set_default_timeout(120_000)
        tab = context.new_page()
        tab.page_errors = []
        tab.on("pageerror", lambda err: tab.page_errors.append(str(err)))
        tab.goto(f"{lab.url}/lab?token={lab.token}", timeout=180_000)
        tab.wait_for_function("() => window.jupyterapp !== undefined", timeout=180_000)
        tab.evaluate("() => window.jupyterapp.started")
        tab.wait_for_selector("#jp-main-dock-panel", timeout=180_000)
        try:
            yield tab
        finally:
            context.close()


EXPECTED_FILES = {".ipynb_checkpoints", ".virtual_documents",  # JupyterLab's own, beside any notebook it opens
                  "answers.pdf"}  # what the last cell writes: the learner's written answers, for Gradescope


def run(page, lab, folder: str, name: str, mode: str, screenshots: Path):
    here = lab.root / folder
    before = {p.name for p in here.iterdir()}
    try:
        result = run_notebook(page, lab, f"{folder}/{name}.ipynb", mode, screenshots / f"{folder}-{name}",
                              timeout_s=NOTEBOOK_SECONDS)
    finally:
        close_notebook(page)
    shots = ", ".join(str(p) for p in result.screenshots)
    print(f"{folder}/{name}: {result.seconds:.1f} s in the browser; screenshot {shots}")
    assert result.run_error is None, f"{folder}/{name}: running the cells failed in the page: {result.run_error}"
    assert result.dialogs == [], f"{folder}/{name}: a dialog opened: {result.dialogs}"
    left = {p.name for p in here.iterdir()} - before - EXPECTED_FILES
    assert left == set(), f"{folder}/{name}: the notebook left files behind: {sorted(left)}"
    result.page_errors = list(page.page_errors)
    page.page_errors.clear()
    return result


def check_complete(result, name: str) -> None:
    assert result.unexecuted() == [], f"{name}: cells never ran: " + \
        ", ".join(result.where(i) for i in result.unexecuted())
    assert result.page_errors == [], f"{name}: JavaScript errors in the page: {result.page_errors}"


def check_clean(result, name: str) -> None:
    """Run All went through: no error or stderr output, and every figure has pixels."""
    assert result.errors() == [], f"{name}: errors:\n" + \
        "\n".join(f"{result.where(i)}: {ename}: {evalue}" for i, ename, evalue in result.errors())
    assert result.stderr_streams() == [], f"{name}: stderr output: {result.stderr_streams()}"
    check_figures(result, name)


def check_figures(result, name: str) -> None:
    blank = [im for im in result.images() if not (im["w"] > 0 and im["h"] > 0 and im["shownW"] > 0)]
    assert blank == [], f"{name}: figures without pixels: " + \
        ", ".join(f"{result.where(im['cell'])} {im}" for im in blank)
    assert len(result.images()) == result.image_outputs(), \
        f"{name}: {result.image_outputs()} image outputs but {len(result.images())} images in the page"


@pytest.mark.parametrize("name", list(SECTIONS))
def test_released_notebook_in_the_browser(name, page, lab, screenshots):
    """Unfinished: only NotImplementedError, figures render, the self-check table prints."""
    result = run(page, lab, "released", name, "each", screenshots)
    unexpected = [f"{result.where(i)}: {ename}: {evalue}" for i, ename, evalue in result.errors() if ename != EXPECTED]
    assert unexpected == [], f"released {name}: errors other than {EXPECTED}:\n" + "\n".join(unexpected)
    assert result.errors(), f"released {name}: no {EXPECTED} at all, yet no exercise is done"
    shown = [f"{result.where(i)}: {line}" for i, line in result.shown_tracebacks() if not line.startswith(EXPECTED)]
    assert shown == [], f"released {name}: the page shows other errors:\n" + "\n".join(shown)
    assert result.stderr_streams() == [], f"released {name}: stderr output: {result.stderr_streams()}"
    check_figures(result, f"released {name}")
    summaries = result.summaries()
    total = len(checks_for(SECTIONS[name]))
    assert summaries, f"released {name}: no self-check table ('N of M checks pass.') in the page"
    assert summaries[-1][1] == total, f"released {name}: the last table has {summaries[-1]}, expected {total} checks"
    assert summaries[-1][0] < total, f"released {name}: every check passes without any solution: {summaries[-1]}"
    check_complete(result, f"released {name}")
    half_drawn = [result.where(i) for i in result.figures_beside_errors()]
    assert half_drawn == [], (
        f"released {name}: a figure is drawn empty or half under a {EXPECTED} (compute what the plot needs "
        f"before plt.subplots, so an unfinished exercise stops the cell before a figure exists):\n"
        + "\n".join(half_drawn))


@pytest.mark.parametrize("name", list(SECTIONS))
def test_solution_notebook_in_the_browser(name, page, lab, screenshots):
    """With solutions and Run All: no error or stderr output, figures render, all checks green."""
    result = run(page, lab, "solved", name, "all", screenshots)
    check_clean(result, f"solved {name}")
    assert result.images(), f"solved {name}: no figure in the page"
    summaries = result.summaries()
    total = len(checks_for(SECTIONS[name]))
    assert summaries, f"solved {name}: no self-check table in the page"
    assert all(passed == of for passed, of in summaries), f"solved {name}: checks fail: {summaries}"
    assert summaries[-1] == (total, total), f"solved {name}: the last table says {summaries[-1]}, expected {total}"
    check_complete(result, f"solved {name}")


def test_lab_notebook_in_the_browser(page, lab, screenshots):
    """The capstone lab as released, Run All: shipped weights, no error or stderr, figures render;
    beside the unfinished notebooks its capstone says it uses the lab's own functions (beside
    finished ones, the learner's: tests/test_lab.py)."""
    result = run(page, lab, "released", LAB_NOTEBOOK, "all", screenshots)
    check_clean(result, f"released {LAB_NOTEBOOK}")
    drawn = {im["cell"] for im in result.images()}
    assert len(drawn) >= LAB_FIGURE_CELLS, f"released {LAB_NOTEBOOK}: figures in {len(drawn)} cells, expected {LAB_FIGURE_CELLS}"
    text = "\n".join(c.get("text", "") for c in result.code_cells)
    assert "not implemented yet" in text, f"released {LAB_NOTEBOOK}: the capstone does not say it falls back"
    check_complete(result, f"released {LAB_NOTEBOOK}")


@pytest.mark.parametrize("name", [n for n in UNGRADED_NOTEBOOKS if n != LAB_NOTEBOOK])
def test_ungraded_notebook_in_the_browser(name, page, lab, screenshots):
    """Another ungraded notebook as released, Run All: no error or stderr output, figures render."""
    result = run(page, lab, "released", name, "all", screenshots)
    check_clean(result, f"released {name}")
    assert result.images(), f"released {name}: no figure in the page"
    check_complete(result, f"released {name}")


def test_a_learner_who_borrows_every_function_and_marks_an_answer(page, lab, screenshots):
    """As released, nothing written but one written answer, `use_reference` after every solution
    cell, each cell run: only the grade cells fail (the course's version is not the learner's),
    every demonstration runs and its figures render; `reveal` under the written answer shows the
    model answer, under an unwritten one it asks for an answer first."""
    name = BORROWED_NOTEBOOK
    result = run(page, lab, "borrowed", name, "each", screenshots)
    grade_cells = {c["index"] for c in result.code_cells if c["source"].startswith("# Autograded:")}
    assert grade_cells, f"borrowed {name}: no grade cell found"
    failing = {i for i, _, _ in result.errors()}
    assert failing == grade_cells and {e for _, e, _ in result.errors()} == {"AssertionError"}, \
        "\n".join(f"{result.where(i)}: {ename}: {evalue}" for i, ename, evalue in result.errors())
    assert result.stderr_streams() == [], f"borrowed {name}: stderr output: {result.stderr_streams()}"
    check_figures(result, f"borrowed {name}")
    assert not result.figures_beside_errors()
    text = "\n".join(c.get("text", "") for c in result.code_cells)
    assert BORROWED in text, f"borrowed {name}: the self-check does not say the functions are borrowed"
    reveals = [c.get("text", "") for c in result.code_cells if 'reveal("' in c["source"]]
    assert len(reveals) >= 2, f"borrowed {name}: {len(reveals)} reveal cells"
    assert "Model answer and marking notes" in reveals[0], reveals[0][:300]
    assert all("Write your own answer in the cell above first" in r for r in reveals[1:]), reveals[1:]
    check_complete(result, f"borrowed {name}")


def test_validate_button(page, lab, course, screenshots):
    """nbgrader's Validate button: failures on the released notebook, success when solved."""
    outcomes = {}
    for folder in ("released", "filled"):
        path = f"{folder}/{VALIDATE_NOTEBOOK}.ipynb"
        try:
            title, body = click_validate(page, path, timeout_s=NOTEBOOK_SECONDS)
            page.screenshot(path=str(screenshots / f"validate-{folder}-{VALIDATE_NOTEBOOK}.png"))
            page.locator(".jp-Dialog .jp-mod-accept").first.click()
        finally:
            close_notebook(page)
        outcomes[folder] = (title, body)
        print(f"Validate on {path}: {title}: {body[:300]!r}")
    title, body = outcomes["released"]
    assert title == "Validation Results", outcomes["released"]
    assert "The following cell failed" in body and EXPECTED in body, outcomes["released"]
    title, body = outcomes["filled"]
    assert title == "Validation Results", outcomes["filled"]
    assert "Success! Your notebook passes all the tests." in body, outcomes["filled"]


def test_nbgrader_validate_command(course, tmp_path):
    """``nbgrader validate`` exits 0 either way: its output names the failures, or says Success."""
    expected = {"released": "VALIDATION FAILED ON", "filled": "Success! Your notebook passes all the tests."}
    for folder, expect in expected.items():
        notebook = tmp_path / folder / f"{CLI_VALIDATE_NOTEBOOK}.ipynb"
        notebook.parent.mkdir()
        shutil.copy(course / folder / notebook.name, notebook)
        done = subprocess.run([sys.executable, "-m", "nbgrader", "validate", notebook.name], cwd=notebook.parent,
                              capture_output=True, text=True, timeout=NOTEBOOK_SECONDS)
        output = done.stdout + done.stderr
        print(f"nbgrader validate {folder}/{notebook.name}: {done.stdout.strip().splitlines()[:1]}")
        assert done.returncode == 0, output[-3000:]
        assert expect in done.stdout, f"nbgrader validate {folder}/{notebook.name}: expected {expect!r}:\n{output[-3000:]}"
        if folder == "released":
            assert EXPECTED in done.stdout and "Success!" not in done.stdout, output[-3000:]
