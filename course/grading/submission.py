"""Read a submission (notebook or .py) into the code cells the learner's process will run."""
from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

from course.exercises import graded_names
from course.lesson import DEMO_KEY, DEMO_TAG, demo_fingerprint
from course.grading.conventions import lookup_names
from course.grading.staging import SUBMISSION_SUFFIXES, visible, visible_files  # noqa: F401 - visible: for callers
from course.sandbox.cells import skippable_demonstrations, to_python, top_level_names


class UnreadableSubmission(Exception):
    """The file cannot be read as a submission at all."""


# A graded file larger than this is refused unread. Notebooks saved with their figures are a few MB
# (PNG outputs, base64); 16 MB leaves room for several times that, while parsed JSON can take ~25
# times its size in the grader's memory (0.4 GB at the limit), which has no memory cap of its own.
MAX_FILE_MB = 16


def _read_graded(path: Path) -> bytes:
    """The bytes of a graded file, or UnreadableSubmission if it is larger than MAX_FILE_MB
    (never more than that is read, however large the file or however fast it grows)."""
    with open(path, "rb") as f:
        data = f.read(MAX_FILE_MB * 2**20 + 1)
    if len(data) > MAX_FILE_MB * 2**20:
        raise UnreadableSubmission(f"{path.name} is larger than the {MAX_FILE_MB} MB a graded file may be "
                                   "(a notebook: clear the outputs of its large figures and save it again)")
    return data


@dataclass
class Submission:
    path: Path
    cells: list[tuple[str, str]]  # (label shown in feedback, Python source)
    skipped: tuple[str, ...] = ()  # labels of demonstrations not run (see read_submission)

    def identity(self, root: Path) -> dict:
        """How the learner's process presents the code (course.sandbox.child): its file's place
        in the working copy of `root` (course.grading.staging), and whether it is a notebook."""
        return {"file": Path(os.path.abspath(self.path)).relative_to(root).as_posix(),
                "notebook": self.path.suffix.lower() == ".ipynb"}


def _notebook_cells(text: bytes) -> list:
    """Cells of a v4 notebook read as JSON (fast; a byte-order mark is fine); older formats
    converted by nbformat."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("the file is JSON but not a notebook")
    if data.get("nbformat") == 4 and isinstance(data.get("cells"), list):
        return [c for c in data["cells"] if isinstance(c, dict)]
    import nbformat  # slow to import; only needed for nbformat 3

    return nbformat.reads(json.dumps(data), as_version=4).cells


def read_submission(path, also_used: frozenset[str] | None = frozenset()) -> Submission:
    """The code cells of a notebook, or a .py module as one cell decoded as Python decodes it
    (a UTF-8 byte-order mark or a PEP 263 ``coding:`` line, any line endings). `also_used`: names
    that code run after the cells (an adapter) reads; None if they cannot be told (every cell runs)."""
    path = Path(path)
    if path.is_dir():
        raise UnreadableSubmission(f"{path} holds no notebook (.ipynb) or module (.py)")
    if not path.is_file():
        raise UnreadableSubmission(f"{path} is not a file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".ipynb":
            return _notebook_submission(path, _read_graded(path), also_used)
        if suffix == ".py":
            try:
                return Submission(path, [("module", importlib.util.decode_source(_read_graded(path)))])
            except SyntaxError as err:  # not UTF-8 and no (or a bad) coding line: Python cannot run it either
                raise UnreadableSubmission(f"{path.name} cannot be read as Python source ({err.msg}); "
                                           "save it as UTF-8") from None
    except UnicodeDecodeError as err:
        encoding = "UTF-8" if err.encoding.replace("_", "-").startswith("utf-8") else err.encoding
        raise UnreadableSubmission(f"{path.name} is not {encoding} text ({err.reason})") from None
    except UnreadableSubmission:
        raise
    except Exception as err:  # noqa: BLE001 - nbformat raises many kinds for a broken notebook
        raise UnreadableSubmission(f"{path.name} is not a readable notebook: {type(err).__name__}: {err}") from None
    raise UnreadableSubmission(f"{path.name}: expected a .ipynb notebook or a .py module")


def _notebook_submission(path: Path, text: bytes, also_used: frozenset[str] | None) -> Submission:
    """The notebook's code cells, less the course's demonstrations (cells tagged DEMO_TAG, their
    source as the course wrote it: an edited one always runs) that bind no name grading or any
    cell that runs uses (course.sandbox.cells.skippable_demonstrations): timings, figures and
    experiments change nothing graded, and were most of a grading's time."""
    cells, demo = [], []
    for index, cell in enumerate(_notebook_cells(text), start=1):
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        if cell.get("cell_type") == "code" and source.strip():
            cells.append((f"{index}", to_python(source)))
            metadata = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
            tags = metadata.get("tags")
            demo.append(isinstance(tags, list) and DEMO_TAG in tags
                        and metadata.get(DEMO_KEY) == demo_fingerprint(source))
    skip = set() if also_used is None else skippable_demonstrations(
        [(code, d) for (_, code), d in zip(cells, demo)], set(graded_names()) | lookup_names() | also_used)
    return Submission(path, [c for i, c in enumerate(cells) if i not in skip],
                      tuple(cells[i][0] for i in sorted(skip)))


def statically_defined(submission: Submission, names) -> set[str]:
    """Names among `names` that the code defines at top level (def, class, assignment, import)."""
    return {name for _, code in submission.cells for name in top_level_names(code)} & set(names)


def submission_files(folder) -> list[Path]:
    """The notebooks and modules in a learner's folder (recursively), in a stable order;
    hidden files, Jupyter checkpoints and symbolic links are left out. A listing only: what is
    graded is read from a snapshot (course.grading.staging)."""
    folder = Path(folder)
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return []
    try:
        found = [p for p in visible_files(fd) if p[-1].lower().endswith(SUBMISSION_SUFFIXES)]
    finally:
        os.close(fd)
    return [folder.joinpath(*p) for p in sorted(found, key="/".join)]


def graded_files(paths) -> list[Path]:
    """The files to grade: each path given, a folder replaced by its notebooks and modules
    (a folder without any is kept, so that reading it says so)."""
    found = []
    for path in map(Path, paths):
        found += (submission_files(path) or [path]) if path.is_dir() else [path]
    return found
