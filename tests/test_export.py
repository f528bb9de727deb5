"""`python -m course.export`: a learner's written answers as a PDF, one page per written question of
the course in its order, for every learner alike; the Gradescope outline with the same pages."""
import contextlib
import io
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pypdf
import pytest

from course import export, selfcheck
from course.authoring.build import EXPORT_SOURCE, EXPORT_TAG, SOURCE_DIR
from course.platforms.gradescope import main as gradescope_main
from course.platforms.written import MAX_ANSWER_CHARS

ROOT = Path(__file__).resolve().parents[1]
STUB = "YOUR ANSWER HERE"


def _source_questions() -> list[tuple[str, str, float]]:
    """(id, notebook, points) of every manual:ID:POINTS cell of the source notebooks, in their order:
    read here from the tags, independently of the registry course.build writes."""
    found = []
    for path in sorted(SOURCE_DIR.glob("*/*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            for tag in cell.metadata.get("tags", []):
                if tag.startswith("manual:"):
                    _, answer_id, points = tag.split(":")
                    found.append((answer_id, path.parent.name, float(points)))
    return found


QUESTIONS = _source_questions()


def released(folder: Path, answers: dict, notebooks=None) -> list[Path]:
    """The course's notebooks as a learner saves them: every answer cell holds nbgrader's stub,
    or the learner's answer from `answers`."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for path in sorted(SOURCE_DIR.glob("*/*.ipynb")):
        if notebooks is not None and path.parent.name not in notebooks:
            continue
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            for tag in cell.metadata.get("tags", []):
                if tag.startswith("manual:"):
                    cell.source = answers.get(tag.split(":")[1], STUB)
        paths.append(folder / f"{path.parent.name}.ipynb")
        nbformat.write(nb, paths[-1])
    return paths


def pages_text(pdf: Path) -> list[str]:
    return [" ".join(page.extract_text().split()) for page in pypdf.PdfReader(pdf).pages]


def sentence(answer_id: str) -> str:
    return f"My answer to {answer_id} says that rounding happens before the wrap"


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


def run(*args) -> Done:
    """`python -m course.export ARGS`, in this process (a traceback would fail the test)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = export.main([str(a) for a in args])
    return Done(code, out.getvalue(), err.getvalue())


def test_the_command_runs_as_a_module(tmp_path):
    (tmp_path / "broken.ipynb").write_text("{", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "course.export", "broken.ipynb", "--pdf", "answers.pdf"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "broken.ipynb: not a readable notebook" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "answers.pdf").exists()


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """A learner who answered everything (markdown and math), and their PDF."""
    folder = tmp_path_factory.mktemp("full")
    answers = {q: f"**First,** {sentence(q)}.\n\n- a list item with $p\\,\\theta_k$ and `code`\n\n"
                  f"$$\\frac{{a}}{{b}} = \\lVert q\\rVert$$\n" for q, _, _ in QUESTIONS}
    notebooks = released(folder, answers)
    done = run(*notebooks, "--pdf", folder / "answers.pdf")
    assert done.returncode == 0, done.stderr
    return folder / "answers.pdf", done


def test_every_answer_is_on_its_own_page_in_the_courses_order(full):
    pdf, done = full
    texts = pages_text(pdf)
    assert len(QUESTIONS) == 14 and sum(p for _, _, p in QUESTIONS) == 30
    assert len(texts) == len(QUESTIONS)
    for number, ((answer_id, notebook, points), text) in enumerate(zip(QUESTIONS, texts), 1):
        assert f"Question {number} of {len(QUESTIONS)}: {answer_id} ({points:g} point" in text
        assert notebook in text
        assert f"First, {sentence(answer_id)}." in text, (answer_id, text)
        others = [q for q, _, _ in QUESTIONS if q != answer_id]
        assert not any(sentence(q) in text for q in others)
        assert "could not be rendered" not in text and "Not submitted" not in text
    assert f"{len(QUESTIONS)} answered" in done.stdout


def test_every_page_asks_its_question(full):
    """The prompt is the course's: its words are on the page (math aside)."""
    registry = json.loads((ROOT / "course" / "written_questions.json").read_text())
    for entry, text in zip(registry, pages_text(full[0])):
        words = re.findall(r"[A-Za-z]{6,}", re.sub(r"\$[^$]*\$|`[^`]*`", " ", entry["prompt"]))
        assert words and all(word in text for word in words[:12]), (entry["id"], words[:12])


def test_missing_notebooks_keep_the_pages(tmp_path):
    rope = [q for q, notebook, _ in QUESTIONS if notebook == "06_rope"]
    notebooks = released(tmp_path, {q: sentence(q) for q in rope}, notebooks={"06_rope"})
    done = run(*notebooks, "--pdf", tmp_path / "answers.pdf")
    assert done.returncode == 0, done.stderr
    texts = pages_text(tmp_path / "answers.pdf")
    assert len(texts) == len(QUESTIONS)
    for (answer_id, _, _), text in zip(QUESTIONS, texts):
        if answer_id in rope:
            assert sentence(answer_id) in text and "Not submitted" not in text
        else:
            assert "Not submitted" in text and "My answer" not in text


def test_an_empty_and_a_partly_answered_notebook(tmp_path):
    empty = tmp_path / "empty.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), empty)
    scaling = [q for q, notebook, _ in QUESTIONS if notebook == "08_scaling"]
    assert len(scaling) == 2
    partly = released(tmp_path, {scaling[0]: sentence(scaling[0])}, notebooks={"08_scaling"})
    done = run(empty, *partly, "--pdf", tmp_path / "answers.pdf")
    assert done.returncode == 0, done.stderr
    assert "empty.ipynb: holds none of the written questions" in done.stderr
    texts = dict(zip([q for q, _, _ in QUESTIONS], pages_text(tmp_path / "answers.pdf")))
    assert len(texts) == len(QUESTIONS)
    assert sentence(scaling[0]) in texts[scaling[0]]
    assert "No answer written" in texts[scaling[1]] and STUB not in texts[scaling[1]]
    assert f"no answer written: {scaling[1]}" in done.stdout
    assert all("Not submitted" in texts[q] for q, notebook, _ in QUESTIONS if notebook != "08_scaling")


def test_hostile_notebooks_get_a_clear_error_and_nothing_is_overwritten(tmp_path):
    (tmp_path / "broken.ipynb").write_text('{"cells": [', encoding="utf-8")
    (tmp_path / "binary.ipynb").write_bytes(b"\xff\xfe\x00garbage")
    (tmp_path / "no cells.ipynb").write_text('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": 7}')
    (tmp_path / "odd cell.ipynb").write_text('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": ["x"]}')
    (tmp_path / "a list.ipynb").write_text('[1, 2]')
    (tmp_path / "--odd.ipynb").write_text('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, '
                                          '"cells": [{"cell_type": "markdown", "metadata": [], "source": 7}]}')
    for name in ("broken.ipynb", "binary.ipynb", "no cells.ipynb", "odd cell.ipynb", "a list.ipynb", "--odd.ipynb",
                 "absent.ipynb"):
        done = run(tmp_path / name, "--pdf", tmp_path / "answers.pdf")
        assert done.returncode == 2 and name in done.stderr, done.stderr
        assert "Traceback" not in done.stderr and not (tmp_path / "answers.pdf").exists()
    (notebook,) = released(tmp_path, {}, notebooks={"01_intuition"})
    before = notebook.read_bytes()
    for out in (notebook, tmp_path / "answers.ipynb"):
        done = run(notebook, "--pdf", out)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert notebook.read_bytes() == before and not (tmp_path / "answers.ipynb").exists()


def test_an_odd_file_name_is_shown_safely(tmp_path):
    (notebook,) = released(tmp_path, {"left_padding": sentence("left_padding")}, notebooks={"02_setup"})
    odd = notebook.rename(tmp_path / "my\nnotes $x$.ipynb")
    done = run(odd, "--pdf", tmp_path / "answers.pdf")
    assert done.returncode == 0, done.stderr
    text = dict(zip([q for q, _, _ in QUESTIONS], pages_text(tmp_path / "answers.pdf")))["left_padding"]
    assert sentence("left_padding") in text and "my\\nnotes $x$.ipynb" in text


def test_two_notebooks_answering_one_question_are_refused(tmp_path):
    (first,) = released(tmp_path / "a", {}, notebooks={"02_setup"})
    (second,) = released(tmp_path / "b", {}, notebooks={"02_setup"})
    done = run(first, second, "--pdf", tmp_path / "answers.pdf")
    assert done.returncode == 2 and "both answer left_padding" in done.stderr, done.stderr


def test_odd_metadata_huge_answers_and_unreadable_math_still_give_every_page(tmp_path):
    huge = "word " * 200_000  # 1 MB
    bad_math = r"The ratio is $\frac{1}{$ and then $\notacommand{x}$ plain words after"
    ids = [q for q, _, _ in QUESTIONS]
    notebooks = released(tmp_path, {ids[0]: huge, ids[1]: bad_math, ids[2]: "x" * 50_000})
    nb = json.loads(notebooks[0].read_text())
    nb["cells"][:0] = [{"cell_type": "markdown", "metadata": {"tags": "manual:zero_gap:1", "nbgrader": ["x"]},
                        "source": "odd"}]
    notebooks[0].write_text(json.dumps(nb))
    done = run(*notebooks, "--pdf", tmp_path / "answers.pdf")
    assert done.returncode == 0, done.stderr
    texts = pages_text(tmp_path / "answers.pdf")
    assert len(texts) == len(QUESTIONS)
    assert "longer than a page" in texts[0] and f"{len(huge.strip()) - MAX_ANSWER_CHARS} more characters" in texts[0]
    assert "could not be rendered" in texts[1]
    assert r"\frac{1}{" in texts[1] and "plain words after" in texts[1]
    assert "x" * 200 in texts[2].replace(" ", "")


def test_the_notebooks_end_with_an_ungraded_export_cell():
    with_questions = {notebook for _, notebook, _ in QUESTIONS}
    for path in sorted(SOURCE_DIR.glob("*/*.ipynb")):
        cells = nbformat.read(path, as_version=4).cells
        export_cells = [c for c in cells if EXPORT_TAG in c.metadata.get("tags", [])]
        if path.parent.name not in with_questions:
            assert not export_cells, path.name
            continue
        assert export_cells == [cells[-1]], path.name
        cell = cells[-1]
        assert cell.cell_type == "code" and cell.source == EXPORT_SOURCE
        assert len([line for line in cell.source.splitlines() if not line.startswith("#")]) == 1
        assert not cell.metadata.get("nbgrader", {}).get("grade"), "the export cell must not be graded"


def test_the_export_cell_writes_the_folders_notebooks_and_nothing_while_graded(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv("COURSE_SANDBOX", raising=False)
    selfcheck.export_answers()
    assert "No notebook of the course" in capsys.readouterr().out and not list(tmp_path.iterdir())
    released(tmp_path, {"zero_gap": sentence("zero_gap")}, notebooks={"01_intuition", "07_alibi"})
    (tmp_path / "01_intuition.course-update.ipynb").write_text("{not json")  # not a course notebook's name
    for graded in ("NBGRADER_EXECUTION", "COURSE_SANDBOX"):
        monkeypatch.setenv(graded, "1")
        selfcheck.export_answers()
        monkeypatch.delenv(graded)
    assert not (tmp_path / "answers.pdf").exists()
    selfcheck.export_answers()
    assert "wrote answers.pdf (14 pages" in capsys.readouterr().out
    texts = pages_text(tmp_path / "answers.pdf")
    assert len(texts) == len(QUESTIONS) and sentence("zero_gap") in texts[1]


def test_gradescope_build_writes_the_outline(tmp_path, capsys):
    out = tmp_path / "autograder.zip"
    assert gradescope_main(["build", "--out", str(out), "--sections", "rope,alibi"]) == 0
    printed = capsys.readouterr().out
    chosen = [(q, p) for q, notebook, p in QUESTIONS if notebook in ("06_rope", "07_alibi")]
    texts = pages_text(tmp_path / "written_outline.pdf")
    assert len(texts) == len(chosen) == 3
    for number, ((answer_id, points), text) in enumerate(zip(chosen, texts), 1):
        assert f"Question {number} of 3: {answer_id} ({points:g} point" in text
        assert f"page {number}: {answer_id}" in printed
        assert "Not submitted" not in text and "No answer" not in text and "Answer (from" not in text
    assert f"{sum(p for _, p in chosen):g} points" in printed and "templated" in printed
    assert "--sections rope,alibi --pdf answers.pdf" in printed
    # a learner exporting for that assignment gets the same pages
    notebooks = released(tmp_path / "learner", {q: sentence(q) for q, _ in chosen}, notebooks={"06_rope", "07_alibi"})
    done = run(*notebooks, "--sections", "rope,alibi", "--pdf", tmp_path / "answers.pdf")
    assert done.returncode == 0, done.stderr
    assert len(pages_text(tmp_path / "answers.pdf")) == len(texts)
