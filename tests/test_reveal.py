"""The self-study reveal: a written question's model answer, only once the learner's answer is
written and saved, never in a released notebook, never while grading."""
import json
import shutil

import nbformat
import pytest

from course.learner import reveal as reveal_module
from course.learner.reveal import reveal, reveal_text
from tests.conftest import ROOT

SOURCES = sorted((ROOT / "source_notebooks").glob("*/*.ipynb"))


def _manual_cells():
    """(notebook, index, answer id, points) of every written question, read from the notebooks."""
    for path in SOURCES:
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(nb.cells):
            for tag in cell.metadata.get("tags", []):
                if tag.startswith("manual:"):
                    _, answer_id, points = tag.split(":")
                    yield path, nb, i, answer_id, float(points)


def test_every_written_question_has_a_reveal_cell_and_a_model_answer():
    answers = json.loads((ROOT / "course" / "model_answers.json").read_text())
    found = set()
    for path, nb, i, answer_id, points in _manual_cells():
        after = nb.cells[i + 1]
        assert after.cell_type == "code" and f"reveal:{answer_id}" in after.metadata["tags"], path.name
        assert f'reveal("{answer_id}")' in after.source
        assert answers[answer_id] == {"points": points, "answer": nb.cells[i].source}
        found.add(answer_id)
    assert found == set(answers) and len(found) == 14


def test_released_notebooks_carry_no_model_answer(released):
    answers = json.loads((ROOT / "course" / "model_answers.json").read_text())
    texts = {path.name: path.read_text() for path in released.values()}
    for answer_id, entry in answers.items():
        body = max(entry["answer"].splitlines(), key=len)  # its longest line: model text, not a heading
        assert all(body not in text for text in texts.values()), answer_id
    assert sum(text.count("reveal(") for text in texts.values()) == 13  # the lab is not among `released`


def _learner_copy(released, tmp_path, section="rope"):
    path = tmp_path / released[section].name
    shutil.copy(released[section], path)
    return path


def _write_answer(path, answer_id, text):
    nb = nbformat.read(path, as_version=4)
    (cell,) = [c for c in nb.cells if any(t.startswith(f"manual:{answer_id}:") for t in c.metadata.get("tags", []))]
    cell.source = text
    nbformat.write(nb, path)


def test_the_answer_is_revealed_only_after_an_attempt(released, tmp_path, monkeypatch):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    path = _learner_copy(released, tmp_path)
    shown, text = reveal_text("rope_precision", tmp_path)
    assert not shown and "0 words" in text and "Model answer" not in text
    _write_answer(path, "rope_precision", "float16 rounds the angle.")
    shown, text = reveal_text("rope_precision", tmp_path)
    assert not shown and "4 words" in text
    _write_answer(path, "rope_precision", "Large positions times the fastest frequency give angles whose float32 "
                  "spacing is coarser than the difference between neighbouring tokens, so nearby positions collide.")
    shown, text = reveal_text("rope_precision", tmp_path)
    model = json.loads((ROOT / "course" / "model_answers.json").read_text())["rope_precision"]["answer"]
    assert shown and model in text
    assert not reveal_text("rope_relative", tmp_path)[0]  # the other question of the notebook is still unanswered


def test_the_notebook_jupyterlab_names_is_read_first(released, tmp_path, monkeypatch):
    _learner_copy(released, tmp_path)
    other = tmp_path / "elsewhere"
    other.mkdir()
    answered = _learner_copy(released, other)
    _write_answer(answered, "rope_precision", " ".join(["word"] * 20))
    monkeypatch.setenv("JPY_SESSION_NAME", str(answered))
    assert reveal_text("rope_precision", tmp_path)[0]
    monkeypatch.delenv("JPY_SESSION_NAME")
    assert not reveal_text("rope_precision", tmp_path)[0]


def test_unknown_question_missing_notebook_and_removed_answers(tmp_path, monkeypatch):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    shown, text = reveal_text("no_such_question", tmp_path)
    assert not shown and "rope_precision" in text
    shown, text = reveal_text("rope_precision", tmp_path)
    assert not shown and "No notebook" in text
    monkeypatch.setattr(reveal_module, "MODEL_ANSWERS_FILE", tmp_path / "removed.json")
    shown, text = reveal_text("rope_precision", tmp_path)
    assert not shown and "instructor" in text


def test_nothing_is_shown_while_grading(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COURSE_SANDBOX", "1")
    assert reveal("rope_precision") is None
    assert capsys.readouterr().out == ""
    monkeypatch.delenv("COURSE_SANDBOX")
    reveal("rope_precision")
    assert "No notebook" in capsys.readouterr().out


@pytest.mark.parametrize("answer_id", ["rope_precision"])
def test_reveal_in_a_real_kernel_shows_markdown(released, tmp_path, answer_id):
    """In Jupyter the reveal is a Markdown display of the model answer."""
    from nbclient import NotebookClient

    path = _learner_copy(released, tmp_path)
    _write_answer(path, answer_id, " ".join(["angle"] * 30))
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f'from course.selfcheck import reveal\nreveal("{answer_id}")')]
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    (shown,) = nb.cells[0].outputs
    assert shown.output_type == "display_data" and "Model answer and marking notes" in shown.data["text/markdown"]
