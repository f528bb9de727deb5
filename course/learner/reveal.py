"""``reveal("rope_precision")``: a written question's model answer and marking notes, shown once
the learner's own answer is written, so a self-study learner can mark their work.

The answers come from ``course/model_answers.json``, which ``python -m course.build``
writes from the source notebooks' ``manual:ID:POINTS`` cells; released notebooks never hold them.
An instructor grading written answers removes that file from the students' installation, and
``reveal`` then says the answers are kept for grading.

The learner's answer is read from the notebook as saved on disk: a kernel sees code, not the
markdown cells, so an unsaved answer does not count yet.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from course.lesson import MODEL_ANSWERS_FILE
from course.learner.selfcheck import SANDBOX_ENV, show

STUB = "YOUR ANSWER HERE"
MIN_WORDS = 12  # "an attempt": a couple of sentences of one's own, not a placeholder


def _tag_prefix(answer_id: str) -> str:
    return f"manual:{answer_id}:"


def _answer_cells(path: Path, answer_id: str) -> list[str]:
    try:
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError, AttributeError):
        return []
    sources = []
    for cell in cells if isinstance(cells, list) else []:
        tags = cell.get("metadata", {}).get("tags", []) if isinstance(cell, dict) else []
        if any(isinstance(t, str) and t.startswith(_tag_prefix(answer_id)) for t in tags):
            source = cell.get("source", "")
            sources.append("".join(source) if isinstance(source, list) else str(source))
    return sources


def _notebooks(directory: Path) -> list[Path]:
    """The notebook this kernel runs (JupyterLab names it in JPY_SESSION_NAME), else those beside it,
    newest first."""
    named = os.environ.get("JPY_SESSION_NAME", "")
    first = [p for p in (Path(named), directory / Path(named).name) if named.endswith(".ipynb") and p.is_file()]
    rest = sorted(directory.glob("*.ipynb"), key=lambda p: p.stat().st_mtime, reverse=True)
    return first[:1] + [p for p in rest if p not in first]


def learner_answer(answer_id: str, directory: Path | None = None) -> str | None:
    """The saved text of the learner's answer cell for `answer_id`, without the stub; None if no
    notebook here has that cell."""
    for path in _notebooks(directory or Path.cwd()):
        sources = _answer_cells(path, answer_id)
        if sources:
            return sources[0].replace(STUB, "").strip()
    return None


def model_answers() -> dict | None:
    try:
        return json.loads(MODEL_ANSWERS_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def reveal_text(answer_id: str, directory: Path | None = None) -> tuple[bool, str]:
    """(revealed, markdown to show): the model answer once the learner's answer is written, else
    what to do first."""
    answers = model_answers()
    if answers is None:
        return False, "The model answers are not installed here: your instructor keeps them for grading."
    if answer_id not in answers:
        return False, f"There is no written question {answer_id!r}; the questions are: {', '.join(sorted(answers))}."
    mine = learner_answer(answer_id, directory)
    if mine is None:
        return False, (f"No notebook in {directory or Path.cwd()} holds the answer cell of {answer_id!r}: "
                       "run this cell in the notebook that asks the question.")
    words = len(re.findall(r"\w+", mine))
    if words < MIN_WORDS:
        return False, (f"Write your own answer in the cell above first ({words} words so far in the saved "
                       f"notebook; a few sentences will do), save the notebook (Ctrl+S), then run this cell again.")
    entry = answers[answer_id]
    return True, (f"**Model answer and marking notes ({entry['points']:g} points).** Mark your answer against "
                  f"them: which points does it make, and which does it miss?\n\n{entry['answer']}")


def reveal(answer_id: str) -> None:
    """Show the model answer of written question `answer_id` once yours is written and saved.
    Does nothing while the notebook is graded."""
    if os.environ.get(SANDBOX_ENV):
        return
    from IPython.display import Markdown  # (installed with ipykernel; imported only when shown)

    _, text = reveal_text(answer_id)
    show(Markdown(text), text)
