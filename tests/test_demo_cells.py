"""The course's demonstration cells (tagged `demo` by course.build: timings, figures, experiments)
are left out of grading when nothing grading runs uses what they define; whatever is used runs,
transitively; a learner's own (untagged) cells always run; and grades are those of running every
cell (the eight solved notebooks give the same report with and without the tags)."""
from __future__ import annotations

import json

import nbformat
import pytest

from course.authoring.build import solution_segments
from course.exercises import NOTEBOOKS, SECTIONS, section_exercises
from course.lesson import DEMO_KEY, DEMO_TAG, demo_fingerprint
from course.grading.grader import grade_file, grade_files
from course.grading.submission import read_submission
from course.sandbox.cells import names_bound, names_used, skippable_demonstrations
from course.sandbox.limits import Limits
from course.grading.report import rendered_notes
from tests.conftest import source_notebook, without_hidden_tests

SMALL = Limits(call_seconds=3, cell_seconds=4, cell_seconds_after_hang=2, exercise_seconds=10, file_seconds=60)
DEFINITIONS, IMPORTS = solution_segments("rope")
INV_FREQ = DEFINITIONS["rope_inv_freq"]
HANG = "while True:\n    pass\n"


def notebook(tmp_path, cells, name="06_rope.ipynb"):
    """A notebook of (source, tags) code cells, the first the imports; demonstrations marked as
    course.build marks them."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("\n".join(IMPORTS))] + [
        nbformat.v4.new_code_cell(source, metadata={"tags": list(tags), **(
            {DEMO_KEY: demo_fingerprint(source)} if DEMO_TAG in tags else {})}) for source, tags in cells]
    path = tmp_path / name
    nbformat.write(nb, path)
    return path


def inv_freq_score(path) -> tuple[float, list[str]]:
    report = grade_file(path, only=["rope.rope_inv_freq"], limits=SMALL)
    return report["exercises"][0]["score"], rendered_notes(report)


def test_a_demonstration_that_hangs_is_not_run(tmp_path):
    path = notebook(tmp_path, [(INV_FREQ, ["solution:rope_inv_freq"]), (HANG, [DEMO_TAG]),
                               ("print(rope_inv_freq(8))", [DEMO_TAG])])
    assert read_submission(path).skipped == ("3", "4")
    assert inv_freq_score(path) == (1.0, [])


def test_a_demonstration_the_learner_edited_runs(tmp_path):
    path = notebook(tmp_path, [(INV_FREQ, ["solution:rope_inv_freq"]), (HANG, [DEMO_TAG]), ("x = 1", [DEMO_TAG])])
    nb = nbformat.read(path, as_version=4)
    nb.cells[2].source = "import math\n" + HANG       # edited after the release: may do anything now
    nbformat.write(nb, path)
    assert read_submission(path).skipped == ("4",)
    score, notes = inv_freq_score(path)
    assert score == 1.0 and notes and "did not finish" in notes[0]


def test_a_learners_own_cell_always_runs(tmp_path):
    path = notebook(tmp_path, [(INV_FREQ, ["solution:rope_inv_freq"]), (HANG, [])])
    score, notes = inv_freq_score(path)
    assert score == 1.0 and notes and "did not finish" in notes[0]


def test_what_grading_uses_runs_transitively(tmp_path):
    # the learner's function reads SCALE, made in a demonstration from a helper in another one
    uses_scale = INV_FREQ.replace("return ", "return SCALE * ", 1)
    path = notebook(tmp_path, [("def one():\n    return 1.0\n", [DEMO_TAG]), (HANG, [DEMO_TAG]),
                               ("SCALE = one()\n", [DEMO_TAG]), (uses_scale, ["solution:rope_inv_freq"])])
    assert read_submission(path).skipped == ("3",)
    assert inv_freq_score(path) == (1.0, [])


def test_a_learners_cell_updating_or_deleting_a_demonstrations_name_keeps_it(tmp_path):
    path = notebook(tmp_path, [("calls = 0\nsaved = []", [DEMO_TAG]),
                               ("calls += 1\ndel saved\n" + INV_FREQ, ["solution:rope_inv_freq"])])
    assert read_submission(path).skipped == ()
    assert inv_freq_score(path) == (1.0, [])


@pytest.mark.parametrize("tags", [[], [DEMO_TAG]])
@pytest.mark.parametrize("dynamic", ["exec('SCALE = 1.0')", "globals()['SCALE'] = 1.0", "from math import *"])
def test_a_cell_that_reaches_names_dynamically_makes_every_cell_run(tmp_path, dynamic, tags):
    # (a demonstration whose names cannot be told runs, and then reaches any name)
    path = notebook(tmp_path, [(dynamic, tags), (HANG, [DEMO_TAG]), (INV_FREQ, ["solution:rope_inv_freq"])])
    assert read_submission(path).skipped == ()


def test_a_demonstration_redefining_a_graded_name_runs(tmp_path):
    path = notebook(tmp_path, [(INV_FREQ, ["solution:rope_inv_freq"]),
                               ("rope_inv_freq = torch.compile(rope_inv_freq)", [DEMO_TAG])])
    assert read_submission(path).skipped == ()


@pytest.mark.parametrize("code,bound", [
    ("a, (b, c) = 1, (2, 3)\nx += 1\ndel y", {"a", "b", "c", "x", "y"}),
    ("for i in range(3):\n    pass\nwith open('f') as fh:\n    pass", {"i", "fh"}),
    ("import os.path as p, sys\nfrom math import pi as PI", {"p", "sys", "PI"}),
    ("@decorate\ndef f(x):\n    y = x\n    return y\nclass K:\n    z = 1", {"f", "K"}),
    ("def g():\n    global G\n    G = 1", {"g", "G"}),
    ("[w for w in range(3)]\nif (q := 3):\n    pass", {"q"}),
    ("try:\n    pass\nexcept ValueError as err:\n    pass", {"err"}),
])
def test_names_a_cell_binds(code, bound):
    assert names_bound(code) == bound


@pytest.mark.parametrize("code,used", [
    ("def f(x, base=B):\n    return x * d + g(x)", {"B", "d", "g"}),          # parameters and locals are not
    ("class K:\n    a = 1\n    b = a + Q", {"Q"}),
    ("y = [w * d2 for w in range(n)]", {"d2", "range", "n"}),
    ("def outer():\n    y = 1\n    def inner():\n        return y + H\n    return inner", {"H"}),
    ("calls += 1\ndel saved", {"calls", "saved"}),                    # they read the names too
])
def test_names_a_cell_uses(code, used):
    assert names_used(code) == used


def test_skipping_is_decided_on_every_cell_that_runs():
    cells = [("import torch\nd = 4", False), ("def f(x):\n    return x * d", False),
             ("T = 5\nplot(f(T))", True), ("plot(T)", True), ("y = T", False)]
    assert skippable_demonstrations(cells, {"f"}) == {3}           # y = T needs cell 2
    cells[4] = ("y = 1", False)
    assert skippable_demonstrations(cells, {"f"}) == {2, 3}
    assert skippable_demonstrations(cells, {"f", "T"}) == {3}      # grading itself looks T up


def test_every_code_cell_of_the_lesson_notebooks_is_tagged_with_its_fingerprint():
    for section in SECTIONS:
        for cell in nbformat.read(source_notebook(section), as_version=4).cells:
            if cell.cell_type == "code":
                tags = cell.metadata.get("tags", [])
                assert DEMO_TAG in tags or any(t == "setup" or t.startswith(("solution:", "grade:")) for t in tags), \
                    (section, cell.source[:80])
                assert (DEMO_TAG in tags) == (cell.metadata.get(DEMO_KEY) == demo_fingerprint(cell.source))


def test_solved_notebooks_get_the_same_report_with_and_without_skipping(tmp_path):
    for section in SECTIONS:
        nb = without_hidden_tests(source_notebook(section))
        tagged = tmp_path / "tagged" / f"{NOTEBOOKS[section]}.ipynb"
        tagged.parent.mkdir(exist_ok=True)
        nbformat.write(nb, tagged)
        for cell in nb.cells:
            cell.metadata.pop("tags", None)
        plain = tmp_path / "plain" / f"{NOTEBOOKS[section]}.ipynb"
        plain.parent.mkdir(exist_ok=True)
        nbformat.write(nb, plain)
        assert read_submission(tagged).skipped and not read_submission(plain).skipped
        with_skip, without = grade_file(tagged), grade_file(plain)
        assert with_skip["score"] == with_skip["max_score"] > 0, json.dumps(with_skip, indent=1)
        assert with_skip == without, section


def test_names_an_adapter_reads_are_defined(tmp_path):
    """`--adapter`: the adapter runs after the cells; a demonstration defining what it reads runs."""
    mine = INV_FREQ.replace("def rope_inv_freq(", "def my_inv_freq(", 1)
    path = notebook(tmp_path, [(mine, [DEMO_TAG]), (HANG, [DEMO_TAG])])
    adapter = tmp_path / "adapter.py"
    adapter.write_text("rope_inv_freq = my_inv_freq\n")
    report = grade_files([path], only=["rope.rope_inv_freq"], limits=SMALL, adapter=adapter)
    assert report["exercises"][0]["score"] == 1.0 and not any("did not finish" in n for n in rendered_notes(report))
    assert read_submission(path, also_used=frozenset({"my_inv_freq"})).skipped == ("3",)
    assert read_submission(path, also_used=None).skipped == ()   # an adapter whose names cannot be told


def _kernel_history(section: str, edit=None) -> tuple[list[str], list[bool]]:
    """The code cells of the solved notebook as a kernel's history holds them (IPython's transform
    of each cell), and which of them are the lesson's demonstrations."""
    from IPython.core.inputtransformer2 import TransformerManager

    transform = TransformerManager().transform_cell
    cells = [c for c in without_hidden_tests(source_notebook(section)).cells if c.cell_type == "code"]
    history = [transform(edit(c.source) if edit and DEMO_TAG in c.metadata.get("tags", []) else c.source) for c in cells]
    return history, [DEMO_TAG in c.metadata.get("tags", []) for c in cells]


def test_the_nbgrader_bridge_recognises_the_lessons_demonstrations_in_a_kernels_history(tmp_path):
    from course.platforms.nbgrader_bridge import scratch_submission

    (tmp_path / "empty").mkdir()
    for section in SECTIONS:
        exercise = section_exercises(section)[0].id
        for edit in (None, lambda source: source + "\nprint('mine')"):
            history, demo = _kernel_history(section, edit)
            folder = scratch_submission(history, exercise, tmp_path / section / str(bool(edit)), tmp_path / "empty")
            cells = nbformat.read(folder / f"{NOTEBOOKS[section]}.ipynb", as_version=4).cells
            marked = [DEMO_TAG in c.metadata.get("tags", []) for c in cells]
            assert marked == (demo if edit is None else [False] * len(cells)), section  # an edited one runs


def test_the_nbgrader_bridge_grades_a_kernels_history_as_its_notebook(tmp_path):
    """Its demonstrations are left out as from the notebook itself, and the report is the same."""
    from course.platforms.nbgrader_bridge import scratch_submission

    (tmp_path / "empty").mkdir()
    for section in ("learned", "scaling"):
        history, _ = _kernel_history(section)
        folder = scratch_submission(history, section_exercises(section)[0].id, tmp_path / section, tmp_path / "empty")
        path = folder / f"{NOTEBOOKS[section]}.ipynb"
        assert read_submission(path).skipped
        plain = tmp_path / f"plain_{section}"
        plain.mkdir()
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            cell.metadata = {}
        nbformat.write(nb, plain / path.name)
        assert grade_file(path) == grade_file(plain / path.name), section


def test_reading_cells_keeps_no_syntax_tree_between_calls():
    """A grader reads the same cells again and again (its answers are remembered), but a cell of
    literals makes a syntax tree a hundred times its size: what is kept stays near the sources' size."""
    import tracemalloc

    from course.sandbox import cells

    sources = [f"TABLE_{i} = {list(range(i, i + 9000))}\n" for i in range(20)]  # ~60 kB each
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for source in sources:
            code = cells.to_python(source)
            assert cells.top_level_names(code) == {f"TABLE_{sources.index(source)}"}
            assert cells.names_bound(code) == cells.top_level_names(code) and cells.names_used(code) == set()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 10 * sum(map(len, sources)), f"{kept / 1e6:.1f} MB kept for {sum(map(len, sources)) / 1e6:.1f} MB of cells"
