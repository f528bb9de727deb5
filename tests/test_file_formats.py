"""No correct submission loses points because of how its file was saved or laid out:
encodings, line endings, notebooks as VS Code, Colab and JupyterLab 4 save them, magics,
`__name__`/`__file__`, helper modules and data files in a learner's folder, wrapped
functions. Each case is graded like the plain solution (full marks, no notes)."""
import json
import os
import subprocess
import sys

import pytest

from course.grading.grader import grade_file, grade_files
from course.sandbox.limits import Limits
from course.grading.submission import read_submission, statically_defined
from course.grading.report import rendered_notes
from tests.conftest import ROOT
from tests.test_grading import full_marks

ROPE = (ROOT / "solutions" / "rope.py").read_text(encoding="utf-8")
ROPE_NAMES = ["rope_inv_freq", "apply_rope", "rope_matrix", "interleaved_to_half_split", "RotaryEmbedding"]


def graded_like_the_solution(report, section="rope"):
    """Full marks on every exercise of `section`, and no cell or module that failed."""
    full_marks(report, section)
    failed = [n for n in rendered_notes(report) if "cell" in n or "module" in n or "could not" in n]
    assert not failed, failed


def code_cell(source, **extra):
    return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source, **extra}


def markdown_cell(source, **extra):
    return {"cell_type": "markdown", "metadata": {}, "source": source, **extra}


def lines(text):
    """A cell source as notebooks store it: a list of lines, each keeping its line ending."""
    return text.splitlines(keepends=True)


def write_notebook(path, cells, metadata=None, minor=5, bom=False):
    data = {"cells": cells, "metadata": metadata or {}, "nbformat": 4, "nbformat_minor": minor}
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + json.dumps(data, indent=1, ensure_ascii=False).encode())
    return path


# -- .py files as editors save them ----------------------------------------------------

PY_VARIANTS = {
    "utf8_bom_crlf": lambda: b"\xef\xbb\xbf" + ROPE.replace("\n", "\r\n").encode(),
    "latin1_coding_line": lambda: ("# -*- coding: latin-1 -*-\n# Auteur : Zoé Müller\nNOTE = 'résumé'\n"
                                   + ROPE).encode("latin-1"),
    "cr_line_endings": lambda: ROPE.replace("\n", "\r").encode(),
    "tabs": lambda: ROPE.replace("    ", "\t").encode(),
    "no_final_newline": lambda: (ROPE.rstrip("\n") + "\nTOTAL = 1 + \\\n    2").encode(),
    "shebang": lambda: ("#!/usr/bin/env python3\n" + ROPE).encode(),
    "future_annotations_and_hints": lambda: ("from __future__ import annotations\nimport typing\n" + ROPE
                                             + "\ndef scaled(x: torch.Tensor, s: float = 1.0) -> torch.Tensor:\n"
                                               "    return x * s\nassert typing.get_type_hints(scaled)['s'] is float\n"
                                             ).encode(),
    "unicode_identifiers": lambda: (ROPE + "\nθ = 0.5\ndef größe(x):\n    return x.shape[-1]\n"
                                    "assert größe(torch.ones(2, 3)) == 3\n").encode(),
    "torch_imported_again_as_another_name": lambda: ("import torch as T\nimport torch.nn.functional as F\n" + ROPE
                                                     + "\nimport torch as pt\nassert pt is T\n").encode(),
    "reads_its_own_file": lambda: ("import os\nassert os.path.isfile(__file__)\n"
                                   "SOURCE = open(__file__, encoding='utf-8-sig').read()\n" + ROPE
                                   + "\nassert 'def apply_rope' in SOURCE\n").encode("utf-8-sig"),
}


@pytest.mark.parametrize("variant", PY_VARIANTS)
def test_a_module_saved_in_any_way_python_runs_gets_full_marks(tmp_path, variant):
    path = tmp_path / "my_rope.py"
    path.write_bytes(PY_VARIANTS[variant]())
    graded_like_the_solution(grade_file(path))


def test_a_module_runs_as_imported_so_its_main_block_does_not_run(tmp_path):
    path = tmp_path / "my_rope.py"
    path.write_text('"""My RoPE."""\nimport sys\n' + ROPE + '''
assert __name__ == "my_rope" and __doc__ == "My RoPE." and __file__.endswith("my_rope.py")
assert sys.modules[__name__].__dict__ is globals()

if __name__ == "__main__":  # a demo: as an import, never run
    import time
    apply_rope = None
    time.sleep(600)
''')
    graded_like_the_solution(grade_file(path))


def test_a_hidden_suite_run_directly_imports_the_module_as_the_grader_does(tmp_path):
    """`pytest grader_tests/test_rope.py --submission FILE` (the developers' path) must not run
    the module's demo either: it would hang here, or its `apply_rope = None` would fail."""
    path = tmp_path / "my_rope.py"
    path.write_text(ROPE + "\nif __name__ == '__main__':\n    import time\n    apply_rope = None\n    time.sleep(600)\n")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "apply_rope",
                          str(ROOT / "grader_tests" / "test_rope.py"), "--submission", str(path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and " passed" in run.stdout and "failed" not in run.stdout, run.stdout[-2000:]


def test_a_module_is_registered_so_dataclasses_pickle_and_type_hints_work(tmp_path):
    path = tmp_path / "rope_with_config.py"
    path.write_text('''from __future__ import annotations
import dataclasses
import pickle
import typing


@dataclasses.dataclass(frozen=True)
class RopeConfig:
    base: float = 10000.0
    created: typing.ClassVar[int] = 0


assert [f.name for f in dataclasses.fields(RopeConfig)] == ["base"]  # ClassVar seen through the module
assert typing.get_type_hints(RopeConfig)["base"] is float
assert pickle.loads(pickle.dumps(RopeConfig(5.0))) == RopeConfig(5.0)
''' + ROPE)
    graded_like_the_solution(grade_file(path))


@pytest.mark.parametrize("content,why", [
    (b"# -*- coding: klingon -*-\nx = 1\n", "unknown encoding"),
    (b"x = '\xe9'\n", "save it as UTF-8"),
    (b"# a\n# b\nx = '\xe9'\n", "not UTF-8 text"),
    (b"\xef\xbb\xbf# -*- coding: latin-1 -*-\nx = 1\n", "encoding problem"),
])
def test_a_module_python_cannot_decode_gives_an_error_report(tmp_path, content, why):
    path = tmp_path / "broken.py"
    path.write_bytes(content)
    report = grade_file(path)
    assert report["exercises"] == [] and why in report["error"], report


# -- functions wrapped or compiled ---------------------------------------------------------

def test_wrapped_and_cached_functions_are_graded_like_plain_ones(tmp_path):
    path = tmp_path / "wrapped.py"
    path.write_text(ROPE + '''
import functools


def traced(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)
    return wrapper


apply_rope = traced(apply_rope)
rope_inv_freq = functools.lru_cache(maxsize=None)(rope_inv_freq)
rope_matrix = functools.partial(rope_matrix, base=10000.0)
interleaved_to_half_split = functools.partial(interleaved_to_half_split)
''')
    graded_like_the_solution(grade_file(path))


def test_a_torchscript_function_that_raises_value_error_is_graded_like_the_plain_one(tmp_path):
    path = tmp_path / "scripted.py"
    path.write_text((ROOT / "solutions" / "intuition.py").read_text() + '''
from typing import Optional


@torch.jit.script
def causal_mask(t_q: int, t_k: Optional[int] = None) -> torch.Tensor:
    if t_k is None:
        t_k = t_q
    if t_q < 1:
        raise ValueError("t_q must be at least 1")
    if t_k < t_q:
        raise ValueError("t_k must be at least t_q")
    return torch.arange(t_k)[None, :] <= torch.arange(t_k - t_q, t_k)[:, None]
''')
    graded_like_the_solution(grade_file(path), "intuition")


def test_a_function_under_torch_compile_is_graded_like_the_plain_one(tmp_path):
    """Compiling takes ~50 s on a CPU (it timed out: 0/4 for correct code); the sandbox disables it."""
    path = tmp_path / "compiled.py"
    path.write_text(ROPE.replace("def apply_rope(", "@torch.compile\ndef apply_rope(", 1) + "\n\n"
                    "_compiled_inv_freq = torch.compile(rope_inv_freq, mode='reduce-overhead')\n"
                    "rope_inv_freq = lambda d, base=10000.0: _compiled_inv_freq(d, base)\n")
    assert "@torch.compile" in path.read_text()
    graded_like_the_solution(grade_file(path))


def test_a_forward_inherited_from_a_base_class_in_the_submission(tmp_path):
    path = tmp_path / "inherited.py"
    learned = (ROOT / "solutions" / "learned.py").read_text()
    path.write_text(learned.replace("class LearnedPositionalEmbedding(nn.Module)", "class _Table(nn.Module)") + '''

class _AddsPositions(nn.Module):
    def forward(self, x, position_ids=None):
        return self.add_positions(x, position_ids)


class LearnedPositionalEmbedding(_AddsPositions, _Table):
    add_positions = _Table.forward
''')
    graded_like_the_solution(grade_file(path), "learned")


# -- notebooks as editors save them --------------------------------------------------------

KERNEL = {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
          "language_info": {"name": "python", "version": "3.11.7", "mimetype": "text/x-python",
                            "file_extension": ".py", "codemirror_mode": {"name": "ipython", "version": 3}}}
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def vscode_notebook(path):
    """VS Code's Jupyter extension: sources as one string with CRLF (Windows), outputs,
    metadata.vscode, nbformat 4.2, a byte-order mark."""
    cells = [markdown_cell("# RoPE\r\nMy notes."),
             code_cell("import sys\r\nassert __name__ == '__main__'\r\nprint(sys.version)", execution_count=1,
                       outputs=[{"name": "stdout", "output_type": "stream", "text": ["3.11.7\n"]}]),
             code_cell(ROPE.replace("\n", "\r\n"), execution_count=2),
             code_cell("if __name__ == '__main__':\r\n    DEMO = apply_rope(torch.ones(1, 2, 4), torch.arange(2))",
                       execution_count=3,
                       outputs=[{"data": {"text/plain": ["tensor(...)"]}, "execution_count": 3, "metadata": {},
                                 "output_type": "execute_result"}]),
             code_cell("assert DEMO.shape == (1, 2, 4)", execution_count=4)]
    metadata = {**KERNEL, "vscode": {"interpreter": {"hash": "3f2a9c0b6d1e"}}}
    return write_notebook(path, cells, metadata, minor=2, bom=True)


def colab_notebook(path):
    """Google Colab: metadata.colab and accelerator, ids in cell metadata, `!pip install` in the
    cell that defines the functions, outputs with colab metadata, nbformat 4.0."""
    ids = iter(["zRw1", "aB3x", "Qe9P"])
    cells = [markdown_cell(["# RoPE in Colab"], metadata={"id": next(ids)}),
             code_cell(lines("!pip install -q torch==2.13.0\n%matplotlib inline\n" + ROPE), execution_count=7,
                       metadata={"id": next(ids), "colab": {"base_uri": "https://localhost:8080/"},
                                 "outputId": "5c1f3a2e-1111-4c6e-9d3b-8a0e2a6f0b55"},
                       outputs=[{"output_type": "stream", "name": "stdout", "text": ["Requirement satisfied\n"]}]),
             code_cell(lines("x = torch.randn(2, 3, 8)\napply_rope(x, torch.arange(3)).shape"), execution_count=8,
                       metadata={"id": next(ids)},
                       outputs=[{"output_type": "execute_result", "execution_count": 8, "metadata": {},
                                 "data": {"text/plain": ["torch.Size([2, 3, 8])"]}}])]
    metadata = {"colab": {"provenance": [], "toc_visible": True, "gpuType": "T4"}, "accelerator": "GPU",
                "kernelspec": {"name": "python3", "display_name": "Python 3"}, "language_info": {"name": "python"}}
    return write_notebook(path, cells, metadata, minor=0)


def jupyterlab4_notebook(path):
    """JupyterLab 4: nbformat 4.5 cell ids, a markdown cell with an attachment, a raw cell, an
    empty code cell, figures in the outputs, one definition per cell, a pickled config."""
    head, *definitions = ROPE.split("\n\n\ndef ")
    parts = [head] + ["def " + d for d in definitions]
    cells = [markdown_cell(["![rotation.png](attachment:rotation.png)"], id="md-1",
                           attachments={"rotation.png": {"image/png": PNG}}),
             {"cell_type": "raw", "id": "raw-1", "metadata": {}, "source": ["not python: {{ }}"]},
             code_cell([], id="empty-1")]
    cells += [code_cell(lines(part), id=f"code-{i}", execution_count=i,
                        outputs=[{"output_type": "display_data", "metadata": {},
                                  "data": {"image/png": PNG, "text/plain": ["<Figure size 640x480 with 1 Axes>"]}}])
              for i, part in enumerate(parts, start=1)]
    cells.append(code_cell(lines("import dataclasses, pickle\n\n@dataclasses.dataclass\nclass Config:\n"
                                 "    d: int = 8\n\nassert pickle.loads(pickle.dumps(Config())) == Config()\n"),
                           id="code-last"))
    cells.append(markdown_cell("Done.", id="md-2"))
    return write_notebook(path, cells, {**KERNEL, "toc-showmarkdowntxt": False}, minor=5)


def magics_notebook(path):
    """Definitions inside %%time and %%capture cells, next to !pip and %pip lines."""
    head, rest = ROPE.split("\n\n\ndef rope_matrix")
    cells = [code_cell(lines("%%time\n!pip install einops\n" + head)),
             code_cell(lines("%%capture output\n%pip install -q numpy\ndef rope_matrix" + rest)),
             code_cell(lines("%%timeit -n 1 -r 1\nrope_inv_freq(8)")),
             code_cell(lines("%%bash\necho this is not python"))]
    return write_notebook(path, cells, KERNEL)


NOTEBOOKS = {"vscode": vscode_notebook, "colab": colab_notebook, "jupyterlab4": jupyterlab4_notebook,
             "magics": magics_notebook}


@pytest.mark.parametrize("kind", NOTEBOOKS)
def test_notebooks_as_editors_save_them_get_full_marks(tmp_path, kind):
    path = NOTEBOOKS[kind](tmp_path / f"{kind}.ipynb")
    graded_like_the_solution(grade_file(path))


def test_definitions_inside_cell_magics_are_seen_without_running_them(tmp_path):
    submission = read_submission(magics_notebook(tmp_path / "magics.ipynb"))
    assert statically_defined(submission, ROPE_NAMES) == set(ROPE_NAMES)
    assert submission.cells[0][1].startswith("\n")  # the %%time line: line numbers stay those of the cell


def test_writefile_then_import_or_run_works_inside_the_working_directory(tmp_path):
    cells = [code_cell(lines("%%writefile rope_impl.py\n" + ROPE)),
             code_cell(lines("from rope_impl import apply_rope, rope_inv_freq")),
             code_cell(lines("%run rope_impl.py")),  # defines the others, as Jupyter's %run does
             code_cell(lines("%%writefile ../outside.py\nx = 1\n"))]
    report = grade_file(write_notebook(tmp_path / "writes.ipynb", cells))
    full_marks(report, "rope")
    assert rendered_notes(report) == ["cell 4: PermissionError: ../outside.py is outside the working directory"], report
    assert not (tmp_path / "outside.py").exists()


# -- a learner's folder: helper modules and data files ------------------------------------

def test_a_folder_submission_imports_its_helper_module_and_reads_its_data(tmp_path):
    learner = tmp_path / "class" / "bob"
    (learner / "data").mkdir(parents=True)
    (learner / "data" / "base.txt").write_text("10000.0\n")
    (learner / "my_utils.py").write_text(ROPE)
    (learner / ".secret").write_text("hidden")
    (tmp_path / "class" / "alice.py").write_text("x = 1\n")
    (learner / "alice.py").symlink_to(tmp_path / "class" / "alice.py")
    write_notebook(learner / "06_rope.ipynb", [
        code_cell(lines("import os\nassert float(open('data/base.txt').read()) == 10000.0\n"
                        "assert not os.path.lexists('.secret') and not os.path.lexists('alice.py'), os.listdir('.')")),
        code_cell(lines("from my_utils import *")),
    ])
    done = subprocess.run([sys.executable, "-m", "course.grade", str(learner), "--format", "json"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    graded_like_the_solution(report)
    assert report["files"]["06_rope.ipynb"]["sections"] == ["rope"]


def test_a_module_in_a_folder_finds_its_files_through___file__(tmp_path):
    (tmp_path / "bob" / "parts").mkdir(parents=True)
    (tmp_path / "bob" / "parts" / "rope_parts.py").write_text(ROPE)
    (tmp_path / "bob" / "settings.json").write_text('{"base": 10000.0}')
    (tmp_path / "bob" / "rope.py").write_text('''import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "parts"))
with open(os.path.join(HERE, "settings.json")) as f:
    assert json.load(f) == {"base": 10000.0}
from rope_parts import *  # noqa: E402,F401,F403
''')
    report = grade_files([tmp_path / "bob"])
    graded_like_the_solution(report)


def test_several_files_given_see_each_other_as_batch_grading_gives_them(tmp_path):
    (tmp_path / "bob").mkdir()
    helper = tmp_path / "bob" / "rope_helpers.py"
    helper.write_text(ROPE)
    notebook = write_notebook(tmp_path / "bob" / "06_rope.ipynb", [code_cell(lines("from rope_helpers import *"))])
    graded_like_the_solution(grade_files([notebook, helper]))


@pytest.mark.parametrize("module", ["rope_parts.py", "rope_parts/__init__.py"])
def test_course_grade_tells_a_file_given_alone_that_imports_a_module_beside_it_to_give_their_folder(tmp_path, module):
    (tmp_path / module).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / module).write_text(ROPE)
    notebook = write_notebook(tmp_path / "06_rope.ipynb", [code_cell(lines("from rope_parts import *"))])

    def course_grade(*paths):
        done = subprocess.run([sys.executable, "-m", "course.grade", "--format", "json", *map(str, paths)],
                              capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    notes = rendered_notes(course_grade(notebook))
    name = module.split("/")[0]
    assert any("No module named 'rope_parts'" in n and f"({name} is beside the file" in n and "give their folder" in n
               for n in notes), notes
    graded_like_the_solution(course_grade(tmp_path))
    # grading as a library (a batch: the files beside may be other learners') says nothing of them
    assert not any("is beside" in n for n in rendered_notes(grade_file(notebook)))
    (tmp_path / "other").mkdir()
    missing = write_notebook(tmp_path / "other" / "06_rope.ipynb", [code_cell(lines("from nowhere_parts import *"))])
    assert not any("is beside" in n for n in rendered_notes(course_grade(missing)))


def test_a_file_graded_alone_sees_none_of_the_files_beside_it(tmp_path):
    (tmp_path / "bob.py").write_text(ROPE)
    (tmp_path / "carol").mkdir()
    (tmp_path / "carol" / "notes.txt").write_text("carol's")
    alice = write_notebook(tmp_path / "alice.ipynb", [
        code_cell(lines("import os\nassert sorted(os.listdir('.')) == ['alice.ipynb'], os.listdir('.')\n" + ROPE))])
    graded_like_the_solution(grade_file(alice))


def test_files_over_the_size_cap_are_not_copied(tmp_path):
    (tmp_path / "bob").mkdir()
    (tmp_path / "bob" / "big.bin").write_bytes(b"\0" * (2 * 2**20))
    (tmp_path / "bob" / "small.txt").write_text("ok")
    write_notebook(tmp_path / "bob" / "06_rope.ipynb", [
        code_cell(lines("import os\nassert os.path.exists('small.txt') and not os.path.exists('big.bin')\n" + ROPE))])
    report = grade_files([tmp_path / "bob"], only=["rope.rope_inv_freq"], limits=Limits(file_mb=1))
    assert [(e["id"], e["score"] == e["max_score"]) for e in report["exercises"]] == [("rope.rope_inv_freq", True)]
    assert not report["notes"], rendered_notes(report)


def test_an_empty_folder_gives_an_error_report(tmp_path):
    report = grade_files([tmp_path])
    assert report["exercises"] == [] and "no notebook" in report["error"], report


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_working_copy_lists_no_hidden_file_nor_link(tmp_path):
    from course.grading.staging import snapshot

    (tmp_path / "bob" / "sub").mkdir(parents=True)
    (tmp_path / "bob" / "sub" / "data.csv").write_text("1,2\n")
    (tmp_path / "bob" / "06_rope.ipynb").write_text("{}")
    (tmp_path / "bob" / ".ipynb_checkpoints").mkdir()
    (tmp_path / "bob" / ".ipynb_checkpoints" / "06_rope-checkpoint.ipynb").write_text("{}")
    (tmp_path / "bob" / "outside").symlink_to(tmp_path)
    with snapshot([tmp_path / "bob"], file_mb=64) as staged:
        assert [relative for relative, _ in staged.copies] == ["06_rope.ipynb", "sub/data.csv"]
        assert [staged.sources[f] for _, f in staged.copies] == [tmp_path / "bob" / "06_rope.ipynb",
                                                                tmp_path / "bob" / "sub" / "data.csv"]
        assert all(f.is_relative_to(staged.root) for _, f in staged.copies) and staged.root.name == "bob"


def test_a_notebook_keeps_what_jupyter_gives_its_cells(tmp_path):
    """A `from __future__` import in one cell holds for the later ones (and none holds before it),
    and `display` is a built-in."""
    cells = [code_cell(lines("def eager(x: int) -> None:\n    pass\n\n\n"
                             "assert eager.__annotations__ == {'x': int, 'return': None}")),
             code_cell(lines("from __future__ import annotations")),
             code_cell(lines("def check(pair: RopePair) -> RopePair:  # RopePair comes later: fine if lazy\n"
                             "    return pair\n\n\nclass RopePair:\n    pass\n\n\n"
                             "display(check(RopePair()))\n" + ROPE))]
    graded_like_the_solution(grade_file(write_notebook(tmp_path / "future.ipynb", cells)))


def test_a_notebook_exported_as_a_script_runs_its_magics_as_jupyter_would(tmp_path):
    path = tmp_path / "exported.py"  # what `jupyter nbconvert --to script` writes
    path.write_text("#!/usr/bin/env python\n# coding: utf-8\n\n# In[1]:\n\n\n"
                    "get_ipython().system('pip install -q einops')\n"
                    "get_ipython().run_line_magic('matplotlib', 'inline')\n\n\n# In[2]:\n\n\n"
                    f"get_ipython().run_cell_magic('time', '', {'!nvidia-smi' + chr(10) + ROPE!r})\n")
    graded_like_the_solution(grade_file(path))


def test_a_notebook_in_a_subfolder_works_from_its_own_folder(tmp_path):
    """As in Jupyter: the notebook's folder is the working directory (read and written) and
    first on sys.path."""
    (tmp_path / "bob" / "notebooks").mkdir(parents=True)
    (tmp_path / "bob" / "notebooks" / "rope_helpers.py").write_text(ROPE)
    (tmp_path / "bob" / "notebooks" / "base.txt").write_text("10000.0")
    write_notebook(tmp_path / "bob" / "notebooks" / "06_rope.ipynb", [
        code_cell(lines("import matplotlib.pyplot as plt\nassert float(open('base.txt').read()) == 10000.0\n"
                        "plt.plot([0, 1])\nplt.savefig('figure.png')\nopen('figure.png', 'rb').close()")),
        code_cell(lines("from rope_helpers import *"))])
    graded_like_the_solution(grade_files([tmp_path / "bob"]))


def test_the_nbgrader_bridge_grades_with_the_helper_modules_beside_the_notebook(tmp_path):
    """A grade cell grades the kernel's cells; a notebook importing a helper module beside it
    (`from rope_helpers import ...`) must find it there too (other notebooks are not graded)."""
    from course.platforms.nbgrader_bridge import scratch_submission

    beside = tmp_path / "student"
    beside.mkdir()
    (beside / "rope_helpers.py").write_text((ROOT / "solutions" / "rope.py").read_text())
    (beside / "other_notebook.ipynb").write_text("not even json")
    cells = ["from rope_helpers import rope_inv_freq, apply_rope, rope_matrix"]
    graded = scratch_submission(cells, "rope.apply_rope", tmp_path / "scratch", beside)
    report = grade_files([graded], only=["rope.apply_rope"])
    (entry,) = report["exercises"]
    assert entry["score"] == entry["max_score"], report
    assert not (tmp_path / "scratch" / "other_notebook.ipynb").exists()


TRICKY_CELLS = ["x = (1\n%2)\n", "y = [1,\n!0]\n", "\n  \n\nx = 1", "  # indented comment\nx = 1\n",
                "  # indented comment\nif x:\n  y = 1\n", ">>> x = 1\n>>> x + 1\n", "In [1]: x = 1\n",
                "s = '''\n%magic\n!shell\n'''\n", "x = 1  # %time\n", "%time x = 1\n", "!pip install torch\n",
                "a = !ls\n", "b = %pwd\n", "x?\n", "%%capture\nx = 1\n", "\tx = 1\n", "", "x = (\n", "\ufeffx = 1\n"]


def test_cells_are_read_exactly_as_ipython_transforms_them():
    """course.sandbox.cells.to_python skips IPython's token transforms for code that parses as
    Python (most of its cost): the result is IPython's own for every code cell of the course's
    notebooks, the test fixtures, and cells made to catch the difference."""
    from IPython.core.inputtransformer2 import TransformerManager

    from course.sandbox.cells import RUN_CELL_MAGICS, to_python

    ipython = TransformerManager()
    cells = list(TRICKY_CELLS)
    for path in [*ROOT.glob("source_notebooks/*/*.ipynb"), *ROOT.glob("tests/**/*.ipynb"), *ROOT.glob("examples/**/*.ipynb")]:
        try:
            notebook = json.loads(path.read_text(encoding="utf-8-sig"))
        except ValueError:
            continue
        for cell in notebook.get("cells", []) if isinstance(notebook, dict) else []:
            if isinstance(cell, dict) and cell.get("cell_type") == "code":
                source = cell.get("source", "")
                cells.append("".join(source) if isinstance(source, list) else str(source))
    assert len(cells) > 200
    for source in cells:
        if source.lstrip().startswith(tuple(f"%%{m}" for m in RUN_CELL_MAGICS)):
            continue  # unwrapped by to_python itself, before IPython
        assert to_python(source) == ipython.transform_cell(source), source


def test_a_forged_missing_module_names_no_path(tmp_path):
    """The module a cell misses is read from what the learner's process says: only a module name
    (an identifier, its top-level package) may become a file the note looks for beside the notebook."""
    attack = (ROOT / "tests" / "attacks" / "forged_missing_module.py").read_text()
    notebook = write_notebook(tmp_path / "06_rope.ipynb", [code_cell(lines(ROPE)), code_cell(lines(attack))])
    done = subprocess.run([sys.executable, "-m", "course.grade", "--format", "json", str(notebook)],
                          capture_output=True, text=True, cwd=ROOT)
    report = json.loads(done.stdout)
    assert report["score"] == report["max_score"] > 0, report
    [forged] = [n for n in report["notes"] if "No module named '..'" in n["detail"]]
    assert forged["kind"] == "cell_raised" and "module" not in forged and "is beside" not in forged["detail"], forged
