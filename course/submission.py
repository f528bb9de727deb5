"""Read a submission (notebook or .py) into the code cells the learner's process will run."""
from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path

from IPython.core.inputtransformer2 import TransformerManager


class UnreadableSubmission(Exception):
    """The file cannot be read as a submission at all."""


@dataclass
class Submission:
    path: Path
    cells: list[tuple[str, str]]  # (label shown in feedback, Python source)


_TRANSFORMER = TransformerManager()


def _to_python(source: str) -> str:
    """IPython syntax (magics, !shell) becomes get_ipython() calls, which the sandbox ignores."""
    try:
        return _TRANSFORMER.transform_cell(source)
    except Exception:  # noqa: BLE001 - leave it; the cell will report its own SyntaxError
        return source


def _notebook_cells(path: Path) -> list:
    """Cells of a v4 notebook read as JSON (fast); older formats converted by nbformat."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("the file is JSON but not a notebook")
    if data.get("nbformat") == 4 and isinstance(data.get("cells"), list):
        return [c for c in data["cells"] if isinstance(c, dict)]
    import nbformat  # slow to import; only needed for nbformat 3

    return nbformat.reads(json.dumps(data), as_version=4).cells


def read_submission(path) -> Submission:
    path = Path(path)
    if not path.is_file():
        raise UnreadableSubmission(f"{path} is not a file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".ipynb":
            cells = []
            for index, cell in enumerate(_notebook_cells(path), start=1):
                source = cell.get("source", "")
                source = "".join(source) if isinstance(source, list) else str(source)
                if cell.get("cell_type") == "code" and source.strip():
                    cells.append((f"{index}", _to_python(source)))
            return Submission(path, cells)
        if suffix == ".py":
            return Submission(path, [("module", path.read_text(encoding="utf-8"))])
    except UnicodeDecodeError as err:
        raise UnreadableSubmission(f"{path.name} is not UTF-8 text ({err.reason})") from None
    except Exception as err:  # noqa: BLE001 - nbformat raises many kinds for a broken notebook
        raise UnreadableSubmission(f"{path.name} is not a readable notebook: {type(err).__name__}: {err}") from None
    raise UnreadableSubmission(f"{path.name}: expected a .ipynb notebook or a .py module")


def statically_defined(submission: Submission, names) -> set[str]:
    """Names among `names` that the code defines at top level (def, class, assignment, import)."""
    wanted, found = set(names), set()
    for _, code in submission.cells:
        try:
            tree = ast.parse(code)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                found.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                found.update(t.id for t in targets if isinstance(t, ast.Name))
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                found.update((a.asname or a.name).split(".")[0] for a in node.names)
    return found & wanted


SUBMISSION_SUFFIXES = (".ipynb", ".py")


def visible(name: str) -> bool:
    """Not a hidden file or folder (``.ipynb_checkpoints`` included) nor ``__pycache__``."""
    return not name.startswith(".") and name != "__pycache__"


def submission_files(folder) -> list[Path]:
    """The notebooks and modules in a learner's folder (recursively), in a stable order;
    hidden files and Jupyter checkpoints are left out."""
    folder = Path(folder)
    found = []
    for path in folder.rglob("*"):
        if not all(map(visible, path.relative_to(folder).parts)):
            continue
        if path.suffix.lower() in SUBMISSION_SUFFIXES and path.is_file():
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())
