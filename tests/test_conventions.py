"""Code written to other signatures is graded by the same hidden suites: through a user's adapter
(--adapter) or a built-in convention (course.grading). Correct code gets full marks on what applies,
wrong code loses points where it is wrong, what a convention cannot express is "n/a", and a broken
adapter gets a clear note."""
import ast
import importlib
import inspect
import json
import subprocess
import sys

import pytest

from course.exercises import EXERCISES, section_exercises
from course.grading.report import format_text
from course.grading.grader import grade_file, grade_files
from course.grading.scoring import scored
from course.sandbox.limits import Limits
from course.grading.suite_runner import TestResult as Result
from course.grading.report import rendered_notes
from tests.conftest import ROOT, same_as_on_record

FOLDER = ROOT / "tests" / "conventions"
EXAMPLE, EXAMPLE_ADAPTER = ROOT / "examples" / "model_rope.py", ROOT / "examples" / "model_rope_adapter.py"

# folder -> (how the report names it, the exercises it grades, text the "Not run" feedback must contain)
CONVENTIONS = {
    "huggingface": ("the Hugging Face convention", {"rope.rope_inv_freq", "rope.apply_rope", "rope.RotaryEmbedding"},
                    ["interleaved pairs", "partial rotary"]),
    "meta_llama": ("Meta's Llama convention", {"rope.rope_inv_freq", "rope.apply_rope"},
                   ["half-split pairs", "fractional positions"]),
    "cs336": ("the Stanford CS336 convention", {"rope.rope_inv_freq", "rope.apply_rope", "rope.RotaryEmbedding"},
              ["half-split pairs", "growing past max_seq_len"]),
    "bloom": ("BLOOM's convention", {"alibi.alibi_slopes", "alibi.alibi_attention"},
              ["attention without the causal mask"]),
    "alibi_paper": ("the ALiBi paper's convention", {"alibi.alibi_slopes"}, ["argument checks"]),
    "mpt": ("MosaicML's MPT convention", {"alibi.alibi_slopes", "alibi.alibi_bias", "alibi.alibi_attention"},
            ["argument checks"]),
    "x_transformers": ("the x-transformers convention", {"alibi.alibi_slopes", "alibi.alibi_bias",
                                                         "alibi.alibi_attention"}, ["argument checks"]),
    "hf_rope_init": ("transformers' rope initialisation functions",
                     {"scaling.linear_scaled_inv_freq", "scaling.dynamic_ntk_inv_freq", "scaling.yarn_inv_freq",
                      "scaling.llama3_inv_freq"}, ["argument checks"]),
    "torchtune": ("the torchtune convention", {"rope.rope_inv_freq", "rope.apply_rope", "rope.RotaryEmbedding",
                                               "scaling.llama3_inv_freq"},
                  ["half-split pairs", "partial rotary", "fractional positions", "argument checks"]),
    "lucidrains": ("the rotary-embedding-torch convention",
                   {"rope.rope_inv_freq", "rope.apply_rope", "rope.RotaryEmbedding", "scaling.linear_scaled_inv_freq",
                    "scaling.ntk_scaled_base"}, ["half-split pairs", "argument checks"]),
    "gpt_neox": ("the GPT-NeoX convention", {"rope.rope_inv_freq", "rope.apply_rope", "rope.RotaryEmbedding"},
                 ["interleaved pairs"]),
    "gptj": ("the GPT-J convention", {"rope.rope_inv_freq", "rope.apply_rope"},
             ["half-split pairs", "fractional positions", "another base than 10000"]),
    "flash_attn": ("flash-attn's convention", {"rope.apply_rope"}, ["argument checks"]),
    "gpt_fast": ("gpt-fast's convention", {"rope.rope_inv_freq", "rope.apply_rope", "scaling.llama3_inv_freq"},
                 ["half-split pairs", "fractional positions", "argument checks"]),
    "llama2c": ("llama2.c's convention", {"rope.rope_inv_freq", "rope.apply_rope"},
                ["half-split pairs", "fractional positions"]),
    "llama_models": ("Meta's llama-models convention",
                     {"rope.rope_inv_freq", "rope.apply_rope", "scaling.llama3_inv_freq"},
                     ["half-split pairs", "Llama 3.1's scaling with other parameters"]),
}


def graded_through(report, title, graded, section=None):
    """Full marks on `graded`, every other exercise of its sections (or `section`) "not applicable",
    and a note naming `title` for each section."""
    sections = sorted({i.split(".")[0] for i in graded} | ({section} if section else set()))
    entries = {e["id"]: e for e in report["exercises"]}
    assert sorted(entries) == sorted(e.id for s in sections for e in section_exercises(s)), report
    for exercise_id, entry in entries.items():
        if exercise_id in graded:
            assert entry["score"] == entry["max_score"] == EXERCISES[exercise_id].points, entry
            assert entry.get("applicable", True) is True
        else:
            assert entry["applicable"] is False and entry["score"] == entry["max_score"] == 0, entry
            assert entry["feedback"].startswith("Not applicable: "), entry
    assert report["score"] == report["max_score"] == sum(EXERCISES[i].points for i in graded)
    for graded_section in sections:
        assert any(f"{graded_section} graded through {title}" in note for note in rendered_notes(report)), \
            rendered_notes(report)
    return entries


def write(path, *parts):
    path.write_text("\n\n".join(parts))
    return path


def source_with_imports(module, objects) -> str:
    """The source of `objects` from `module` (with inspect.getsource), preceded by imports of the
    module-level names it uses, so it runs as a learner's file."""
    body = "\n\n".join(inspect.getsource(o) for o in objects)
    own = {o.__name__ for o in objects}
    used = sorted({n.id for n in ast.walk(ast.parse(body)) if isinstance(n, ast.Name)} - own)
    needed = [n for n in used if n in vars(module)]
    return f"from {module.__name__} import {', '.join(needed)}\n\n{body}"


# ---------------------------------------------------------------- correct code
@pytest.mark.parametrize("folder", list(CONVENTIONS))
def test_correct_code_in_each_convention_gets_full_marks_where_it_applies(folder):
    title, graded, not_run = CONVENTIONS[folder]
    entries = graded_through(grade_file(FOLDER / folder / "correct.py"), title, graded)
    feedback = "\n".join(e["feedback"] for e in entries.values())
    for phrase in not_run:
        assert f"not applicable to {title}: {phrase}" in feedback, feedback


def test_transformers_own_llama_rope_gets_full_marks(tmp_path):
    llama = pytest.importorskip("transformers.models.llama.modeling_llama")
    source = source_with_imports(llama, (llama.LlamaRotaryEmbedding, llama.rotate_half, llama.apply_rotary_pos_emb))
    report = grade_file(write(tmp_path / "llama_rope.py", source))
    graded_through(report, "the Hugging Face convention", CONVENTIONS["huggingface"][1], "rope")


def test_transformers_own_gpt_neox_rope_gets_full_marks(tmp_path):
    neox = pytest.importorskip("transformers.models.gpt_neox.modeling_gpt_neox")
    source = source_with_imports(neox, (neox.GPTNeoXRotaryEmbedding, neox.rotate_half, neox.apply_rotary_pos_emb))
    report = grade_file(write(tmp_path / "neox_rope.py", source))
    graded_through(report, "the GPT-NeoX convention", CONVENTIONS["gpt_neox"][1], "rope")


def test_transformers_own_gptj_rope_gets_full_marks(tmp_path):
    gptj = pytest.importorskip("transformers.models.gptj.modeling_gptj")
    source = source_with_imports(gptj, (gptj.create_sinusoidal_positions, gptj.rotate_every_two,
                                        gptj.apply_rotary_pos_emb))
    report = grade_file(write(tmp_path / "gptj_rope.py", source))
    graded_through(report, "the GPT-J convention", CONVENTIONS["gptj"][1], "rope")


def test_transformers_own_bloom_alibi_gets_full_marks(tmp_path):
    bloom = pytest.importorskip("transformers.models.bloom.modeling_bloom")
    source = source_with_imports(bloom, (bloom._get_alibi_slopes, bloom.build_alibi_tensor))
    report = grade_file(write(tmp_path / "bloom_alibi.py", source))
    graded_through(report, "BLOOM's convention", CONVENTIONS["bloom"][1], "alibi")


def test_transformers_own_rope_init_functions_get_full_marks(tmp_path):
    rope_utils = pytest.importorskip("transformers.modeling_rope_utils")
    functions = (rope_utils._compute_linear_scaling_rope_parameters, rope_utils._compute_dynamic_ntk_parameters,
                 rope_utils._compute_yarn_parameters, rope_utils._compute_llama3_parameters)
    report = grade_file(write(tmp_path / "rope_utils.py", source_with_imports(rope_utils, functions)))
    graded_through(report, "transformers' rope initialisation functions", CONVENTIONS["hf_rope_init"][1], "scaling")


def test_hugging_face_functions_without_a_rotary_module():
    report = grade_file(FOLDER / "huggingface" / "functions_only.py")
    entries = graded_through(report, "the Hugging Face convention", {"rope.apply_rope"}, "rope")
    for exercise_id in ("rope.rope_inv_freq", "rope.RotaryEmbedding"):
        assert "no rotary module" in entries[exercise_id]["feedback"]
    assert "you define no rotary module" in " ".join(rendered_notes(report))


@pytest.mark.parametrize("name", ["legacy_tables", "legacy_4d_tables"])
def test_older_hugging_face_code_that_looks_rows_up_by_position_ids_gets_full_marks(name):
    """transformers 4.28-4.37: whole cos/sin tables from forward(x, seq_len), rows looked up by
    apply_rotary_pos_emb(q, k, cos, sin, position_ids)."""
    graded_through(grade_file(FOLDER / "huggingface" / f"{name}.py"), "the Hugging Face convention",
                   CONVENTIONS["huggingface"][1], "rope")


def test_older_hugging_face_functions_alone_and_a_lookup_mistake(tmp_path):
    legacy = (FOLDER / "huggingface" / "legacy_tables.py").read_text()
    functions = legacy[legacy.index("def rotate_half"):]
    report = grade_file(write(tmp_path / "functions.py", "import torch", functions))
    graded_through(report, "the Hugging Face convention", {"rope.apply_rope"}, "rope")
    shifted = legacy.replace("cos = cos[position_ids]", "cos = cos[position_ids + 1]").replace(
        "sin = sin[position_ids]", "sin = sin[position_ids + 1]")
    entries = {e["id"]: e for e in grade_file(write(tmp_path / "shifted.py", shifted))["exercises"]}
    assert entries["rope.apply_rope"]["score"] < entries["rope.apply_rope"]["max_score"], entries["rope.apply_rope"]


# ---------------------------------------------------------------- wrong code
def _mistakes():
    for folder in CONVENTIONS:
        for bug in importlib.import_module(f"tests.conventions.{folder}.mistakes").BUGS:
            yield pytest.param(folder, bug, id=f"{folder}-{bug.id}")


def test_each_convention_has_at_least_three_mistakes():
    for folder in CONVENTIONS:
        assert len(importlib.import_module(f"tests.conventions.{folder}.mistakes").BUGS) >= 3, folder


@pytest.mark.parametrize("folder,bug", list(_mistakes()))
def test_wrong_code_loses_points_in_the_right_exercise(folder, bug, tmp_path):
    correct = (FOLDER / folder / "correct.py").read_text()
    path = write(tmp_path / f"{folder}_{bug.id}.py", correct, "# --- the mistake under test ---", bug.code)
    report = grade_file(path)
    same_as_on_record(f"conventions/{folder}/{bug.id}", report)
    entries = {e["id"]: e for e in report["exercises"]}
    target = entries[bug.exercise]
    assert target["score"] < target["max_score"], f"{bug.exercise} did not lose points for {bug.id}"
    assert bug.mistake in target["feedback"], f"feedback lacks {bug.mistake!r}:\n{target['feedback']}"
    keys = [m["key"] for m in target["mistakes"]]
    assert not bug.key or bug.key in keys, f"the report names {keys}, not {bug.key!r}:\n{target['feedback']}"
    collateral = {i: e["score"] for i, e in entries.items()
                  if i not in {bug.exercise, *bug.cascades} and e["score"] < e["max_score"]}
    assert not collateral, f"{bug.id} also cost points in {collateral}"


# ---------------------------------------------------------------- who decides
def test_the_learners_code_cannot_make_a_test_not_applicable(tmp_path):
    """pytest's own skip exception raised by the learner's code is a failure, not a test that did not run."""
    dodge = '''
try:
    from _pytest.outcomes import Skipped
except ImportError:
    class Skipped(BaseException):
        pass


def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
    raise Skipped("does not apply to me")
'''
    path = write(tmp_path / "rope.py", (ROOT / "solutions" / "rope.py").read_text(), dodge)
    entry = {e["id"]: e for e in grade_file(path, only=["rope.apply_rope"])["exercises"]}["rope.apply_rope"]
    assert entry["score"] == 0 and entry["max_score"] == EXERCISES["rope.apply_rope"].points, entry
    assert "Not run" not in entry["feedback"] and entry.get("applicable", True), entry


def test_a_convention_never_replaces_the_learners_own_names(tmp_path):
    wrong_helpers = '''
def rotate_half(x):
    raise RuntimeError("never called")


def apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=1):
    raise RuntimeError("never called")
'''
    path = write(tmp_path / "rope.py", (ROOT / "solutions" / "rope.py").read_text(), wrong_helpers)
    report = grade_file(path)
    assert report["score"] == report["max_score"] == sum(e.points for e in section_exercises("rope"))
    assert not any("graded through" in note for note in rendered_notes(report))


@pytest.mark.parametrize("folder,crash", [
    ("huggingface", "class LlamaRotaryEmbedding(LlamaRotaryEmbedding):\n"
                    "    def forward(self, x, position_ids):\n"
                    "        if x.shape[-2:] == (6, 16):\n"
                    "            import os; os._exit(3)\n"
                    "        return super().forward(x, position_ids)\n"),
    ("example", "_rotate = rotate\n"
                "def rotate(x, positions, theta=10000.0, interleave=False, rotary_fraction=1.0):\n"
                "    if x.shape[-2:] == (6, 16):\n"
                "        import os; os._exit(3)\n"
                "    return _rotate(x, positions, theta, interleave, rotary_fraction)\n"),
], ids=["convention", "adapter"])
def test_adapters_are_run_again_after_the_learners_process_dies(folder, crash, tmp_path):
    """apply_rope's 16-feature check kills the process; the checks after it still reach the adapter's names."""
    base = EXAMPLE if folder == "example" else FOLDER / folder / "correct.py"
    path = write(tmp_path / "crashes.py", base.read_text(), crash)
    report = grade_files([path], only=["rope.rope_inv_freq", "rope.apply_rope"],
                         adapter=EXAMPLE_ADAPTER if folder == "example" else None)
    entries = {e["id"]: e for e in report["exercises"]}
    feedback = entries["rope.apply_rope"]["feedback"]
    assert feedback.startswith("1 of ") and "keeps the length of every vector" in feedback, feedback
    assert "process running your code ended" in feedback
    assert entries["rope.rope_inv_freq"]["score"] == EXERCISES["rope.rope_inv_freq"].points


# ---------------------------------------------------------------- a user's adapter
def test_the_adapter_example_through_the_command_line():
    done = subprocess.run([sys.executable, "-m", "course.grade", str(EXAMPLE), "--adapter", str(EXAMPLE_ADAPTER),
                           "--format", "json"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    entries = {e["id"]: e for e in report["exercises"]}
    graded = {"rope.rope_inv_freq", "rope.apply_rope", "alibi.alibi_slopes"}
    assert sorted(entries) == sorted(e.id for s in ("rope", "alibi") for e in section_exercises(s))
    for exercise_id, entry in entries.items():
        assert {"id", "score", "max_score", "feedback", "applicable"} <= set(entry)
        if exercise_id in graded:
            assert entry["score"] == entry["max_score"] == EXERCISES[exercise_id].points, entry
            assert "Not run: " in entry["feedback"] and "does not validate its arguments" in entry["feedback"]
        else:
            assert entry["applicable"] is False and entry["max_score"] == 0, entry
            assert "(declared in the adapter model_rope_adapter.py)" in entry["feedback"]
    assert report["score"] == report["max_score"] == sum(EXERCISES[i].points for i in graded)
    assert "rope graded through the adapter model_rope_adapter.py: rope_inv_freq, apply_rope" in rendered_notes(report)
    text = format_text(report, str(EXAMPLE))
    assert any(line.startswith("rope.rope_matrix") and line.endswith("n/a") for line in text.splitlines()), text


@pytest.mark.parametrize("adapter,expected", [
    ("missing.py", "cannot be read: there is no such file; graded without it"),
    ("syntax_error.py", "has a syntax error at line 4"),
    ("raises.py", "raised NameError at line 8: name 'rotate_everything' is not defined; graded without it"),
    ("defines_nothing.py", "defines none of the course's names"),
    ("hangs.py", "did not run: did not finish within 3 s; graded without it"),
])
def test_a_broken_adapter_gets_a_clear_note(adapter, expected):
    report = grade_files([EXAMPLE], adapter=FOLDER / "adapters" / adapter, limits=Limits(cell_seconds=3))
    assert "error" not in report and report["exercises"] == [], report
    notes = "\n".join(rendered_notes(report))
    assert expected in notes, notes
    assert "Traceback" not in notes and 'File "' not in notes


def test_an_adapter_with_a_misspelt_feature_is_warned_and_still_used():
    report = grade_files([EXAMPLE], adapter=FOLDER / "adapters" / "unknown_feature.py")
    assert any("'interleavd' is neither a feature" in note for note in rendered_notes(report)), rendered_notes(report)
    entry = {e["id"]: e for e in report["exercises"]}["rope.rope_inv_freq"]
    assert entry["score"] == entry["max_score"] and "does not validate its arguments" in entry["feedback"]


# ---------------------------------------------------------------- scoring checks that do not run
def test_checks_that_do_not_run_weigh_nothing_and_are_listed():
    ok, bad = Result("is right", True, 2.0), Result("is also right", False, 1.0, "wrong values")
    skipped = Result("pairs (2k, 2k+1)", False, 2.0, not_run="not applicable to X: interleaved pairs")
    device = Result("keeps the device", False, 1.0, not_run="the device check could not run here: no GPU")
    entry = scored("rope.apply_rope", [ok, skipped, skipped, device])
    assert entry["score"] == entry["max_score"] == EXERCISES["rope.apply_rope"].points
    assert entry["feedback"] == ("All 1 checks that apply pass.\nNot run: 2 checks (not applicable to X: interleaved "
                                 "pairs); 1 check (the device check could not run here: no GPU).")
    entry = scored("rope.apply_rope", [ok, bad, skipped])
    assert entry["score"] == round(EXERCISES["rope.apply_rope"].points * 2 / 3, 2)
    assert entry["feedback"].startswith("1 of 2 checks that apply fail:") and "Not run: 1 check" in entry["feedback"]


def test_an_exercise_none_of_whose_checks_run_is_not_applicable():
    skipped = Result("pairs (2k, 2k+1)", False, 2.0, not_run="not applicable to X: interleaved pairs")
    entry = scored("rope.rope_matrix", [skipped, skipped])
    assert (entry["status"], entry["score"], entry["max_score"], entry["applicable"]) == ("not_applicable", 0, 0, False)
    assert [c["outcome"] for c in entry["checks"]] == ["not_run", "not_run"]
    assert entry["feedback"] == ("Not applicable: none of its checks could run: 2 checks (not applicable to X: "
                                 "interleaved pairs).")
    report = {"score": 0.0, "max_score": 0.0, "exercises": [entry], "notes": [], "files": {}}
    lines = format_text(report, "x.py").splitlines()
    assert lines[1].split() == ["rope.rope_matrix", "n/a"] and lines[2].strip().startswith("Not applicable")


# ---------------------------------------------------------------- the excuses go to what was adapted
def test_rebinding_a_convention_name_does_not_pass_on_its_excuses(tmp_path):
    """The convention's apply_rope is bound by reference when adapting: a learner's code that
    rebinds the name later still has its convention functions (here wrong) graded, never its own."""
    path = tmp_path / "rebinds.py"
    path.write_text((ROOT / "tests" / "attacks" / "convention_rebind.py").read_text())
    entry = {e["id"]: e for e in grade_file(path)["exercises"]}["rope.apply_rope"]
    honest = tmp_path / "honest.py"  # the same wrong convention functions, without the rebinding
    honest.write_text(path.read_text().replace('    globals()["apply_rope"] = _incomplete_apply_rope\n', ""))
    expected = {e["id"]: e for e in grade_file(honest)["exercises"]}["rope.apply_rope"]
    assert expected["score"] < expected["max_score"] / 2, expected
    assert entry["score"] == expected["score"], (entry, expected)


def test_a_convention_leaves_the_learners_own_names_alone(tmp_path):
    """Convention functions (here wrong) and a rotary module beside the learner's own rope_inv_freq and
    apply_rope: the convention makes RotaryEmbedding only, and the learner's own functions are graded."""
    solution = (ROOT / "solutions" / "rope.py").read_text()
    own = solution[solution.index("def rope_inv_freq"):solution.index("def rope_matrix")]
    wrong_hf = (ROOT / "tests" / "attacks" / "convention_rebind.py").read_text()
    wrong_hf = wrong_hf[:wrong_hf.index("def _incomplete_apply_rope")].replace(
        '    globals()["apply_rope"] = _incomplete_apply_rope\n', "")
    module = """class LlamaRotaryEmbedding(torch.nn.Module):
    def __init__(self, dim, max_position_embeddings=2048, base=10000.0):
        super().__init__()
        self.inv_freq = base ** (-torch.arange(0, dim, 2).float() / dim)

    def forward(self, x, position_ids):
        freqs = position_ids[..., None].float() * self.inv_freq
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(x.dtype), emb.sin().to(x.dtype)
"""
    report = grade_file(write(tmp_path / "mixed.py", "import math", wrong_hf, own, module))
    entries = {e["id"]: e for e in report["exercises"]}
    for exercise_id in ("rope.rope_inv_freq", "rope.apply_rope"):
        assert entries[exercise_id]["score"] == entries[exercise_id]["max_score"] > 0, entries[exercise_id]
    assert any("RotaryEmbedding is your LlamaRotaryEmbedding" in note for note in rendered_notes(report)), rendered_notes(report)


# ---------------------------------------------------------------- a class: conventions only when the instructor asks
def test_a_class_grades_conventions_only_when_the_instructor_turns_them_on(tmp_path):
    """course.batch (and --gradebook, which grades through it): off by default; --conventions turns them on."""
    from course.platforms.batch import main as batch

    learners = tmp_path / "class"
    learners.mkdir()
    (learners / "ada.py").write_text((FOLDER / "huggingface" / "correct.py").read_text())
    by_flag = {}
    for flag in ([], ["--conventions"]):
        out = tmp_path / f"out{len(flag)}"
        assert batch([str(learners), "--out", str(out), "--workers", "1", "--no-progress", "--summary", "json",
                      *flag]) == 0
        by_flag[bool(flag)] = json.loads((out / "students" / "ada.json").read_text())
    title, graded, _ = CONVENTIONS["huggingface"]
    off, on = by_flag[False], by_flag[True]  # (a learner's record holds its report's fields)
    assert not any(title in note for note in rendered_notes(off)), off
    assert all(e["score"] == 0 for e in off["exercises"]), off
    graded_through(on, title, graded, "rope")


def test_gradescope_grades_conventions_only_when_built_to(tmp_path):
    from course.platforms.gradescope import _parser
    from course.platforms.gradescope.config import Config
    from course.sandbox.limits import limits_from

    assert Config().grading_limits().conventions is False
    assert Config(limits={"call_seconds": 5.0}).grading_limits().conventions is False  # a config from before
    assert limits_from(_parser().parse_args(["build", "--conventions"])).conventions is True
    assert limits_from(_parser().parse_args(["build"])).conventions is False
    path = FOLDER / "huggingface" / "correct.py"
    report = grade_file(path, limits=Config().grading_limits())
    assert report["score"] == 0 and not any("graded through" in n for n in rendered_notes(report)), report
    title, graded, _ = CONVENTIONS["huggingface"]
    graded_through(grade_file(path, limits=Config(limits={"conventions": True}).grading_limits()), title, graded, "rope")


# ---------------------------------------------------------------- recognised by signature and behaviour
# Written here in the style of real libraries (same names as a known convention, other signatures).
GPT_FAST = '''import torch


def precompute_freqs_cis(seq_len, n_elem, base=10000):
    freqs = 1.0 / (base ** (torch.arange(0, n_elem, 2)[: n_elem // 2].float() / n_elem))
    angles = torch.outer(torch.arange(seq_len).float(), freqs)
    return torch.stack((angles.cos(), angles.sin()), dim=-1)  # (seq_len, n_elem / 2, 2)


def apply_rotary_emb(x, freqs_cis):  # x (B, T, H, D), adjacent pairs
    pairs = x.float().reshape(*x.shape[:-1], -1, 2)
    table = freqs_cis.view(1, pairs.size(1), 1, pairs.size(3), 2)
    turned = torch.stack((pairs[..., 0] * table[..., 0] - pairs[..., 1] * table[..., 1],
                          pairs[..., 1] * table[..., 0] + pairs[..., 0] * table[..., 1]), dim=-1)
    return turned.flatten(3).type_as(x)
'''

LLAMA2_C = '''import torch


def precompute_freqs_cis(dim, end, theta=10000.0):
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
    angles = torch.outer(torch.arange(end).float(), freqs)
    return angles.cos(), angles.sin()


def apply_rotary_emb(xq, xk, freqs_cos, freqs_sin):  # (B, T, H, D), adjacent pairs
    def turn(x):
        even, odd = x.float().reshape(*x.shape[:-1], -1, 2).unbind(-1)
        cos, sin = freqs_cos[None, :, None, :], freqs_sin[None, :, None, :]
        return torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1).flatten(3).type_as(x)
    return turn(xq), turn(xk)
'''

# Hugging Face names, but cos and sin taken as one (T, D) table for the whole batch: right with one
# sequence, a crash with two.
HF_OTHER_LAYOUT = '''import torch


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin):
    cos, sin = cos.view(q.shape[-2], -1), sin.view(q.shape[-2], -1)
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
'''

# A library's rotary class that happens to be called RotaryEmbedding: its own constructor, forward(t).
LIBRARY_ROTARY = '''class RotaryEmbedding(torch.nn.Module):
    def __init__(self, dim, theta=10000, interpolate_factor=1.0):
        super().__init__()
        self.register_buffer("freqs", 1.0 / theta ** (torch.arange(0, dim, 2).float() / dim))

    def forward(self, t):
        return torch.outer(t.float(), self.freqs)
'''


def _without_rotary_embedding() -> str:
    """The course's solution of the rope section, its RotaryEmbedding class left out."""
    solution = (ROOT / "solutions" / "rope.py").read_text()
    return solution[:solution.index("class RotaryEmbedding")] + solution[solution.index("def cached_rope_attention"):]


def not_recognised(report, section):
    """The section's "not recognised" note (data), which must name --adapter."""
    notes = [n for n in report["notes"] if n["kind"] == "not_recognised" and n.get("section") == section]
    assert len(notes) == 1, report["notes"]
    assert "--adapter" in notes[0]["detail"], notes[0]
    return notes[0]


def parameters(found, name, part="parameters"):
    return [p["name"] for p in next(f for f in found if f["name"] == name)[part]]


@pytest.mark.parametrize("source,title", [(GPT_FAST, "gpt-fast's convention"), (LLAMA2_C, "llama2.c's convention")],
                         ids=["gpt_fast", "llama2_c"])
def test_meta_names_with_other_signatures_are_graded_by_their_own_conventions(source, title, tmp_path):
    """Meta's names, other signatures (gpt-fast's apply_rotary_emb(x, freqs_cis), llama2.c's (xq, xk,
    freqs_cos, freqs_sin)): once "not recognised" (and before that, Meta's called them the wrong way and
    scored 0 with tracebacks), now each is told apart by its signatures and gets full marks."""
    report = grade_file(write(tmp_path / "rope.py", source))
    graded_through(report, title, {"rope.rope_inv_freq", "rope.apply_rope"})
    assert "error" not in report and "Meta's Llama convention" not in json.dumps(report), report
    assert "Traceback" not in json.dumps(report)


def test_llama4_apply_scaling_is_not_graded_as_llama_3_1s(tmp_path):
    """llama-models' Llama 4 apply_scaling(freqs, scale_factor, high_freq_factor) has Llama 3.1's name and
    another signature: the rope functions beside it are graded, the scaling section is "not recognised"."""
    correct = (FOLDER / "llama_models" / "correct.py").read_text()
    llama4 = """
def apply_scaling(freqs, scale_factor, high_freq_factor):
    return freqs / scale_factor
"""
    report = grade_file(write(tmp_path / "llama4.py", correct, llama4))
    graded_through(report, "Meta's llama-models convention", {"rope.rope_inv_freq", "rope.apply_rope"})
    found = not_recognised(report, "scaling")["found"]
    assert parameters(found, "apply_scaling") == ["freqs", "scale_factor", "high_freq_factor"]


def test_gpt_fast_code_is_graded_through_a_six_line_adapter_of_the_helpers(tmp_path):
    """The README's example adapter (section "Adapter helpers"), as printed there."""
    readme = (ROOT / "README.md").read_text()
    example = readme[readme.index("### Adapter helpers"):].split("```python\n", 1)[1].split("```", 1)[0]
    assert "from course.adapting import" in example and "def apply_rope" in example, example
    adapter = write(tmp_path / "gpt_fast_adapter.py", example)
    report = grade_files([write(tmp_path / "rope.py", GPT_FAST)], adapter=adapter, only=["rope.apply_rope"])
    entry = {e["id"]: e for e in report["exercises"]}["rope.apply_rope"]
    assert entry["score"] == entry["max_score"] == EXERCISES["rope.apply_rope"].points, entry
    assert "error" not in report


def test_hugging_face_names_of_another_layout_are_not_recognised_when_the_probe_fails(tmp_path):
    """The signatures fit the Hugging Face convention; its probe with a batch of 2 crashes: "not
    recognised" (with the probe's reason), where the old recogniser passed batch 1 and scored zeros."""
    report = grade_file(write(tmp_path / "rope.py", HF_OTHER_LAYOUT))
    assert report["exercises"] == [] and "error" in report, report
    note = not_recognised(report, "rope")
    assert [t["convention"] for t in note["tried"]] == ["the Hugging Face convention"], note
    assert "apply_rope" in note["tried"][0]["why"], note
    assert parameters(note["found"], "apply_rotary_pos_emb") == ["q", "k", "cos", "sin"]


def test_a_library_rotary_embedding_is_graded_through_a_convention_beside_the_learners_functions(tmp_path):
    """A library's RotaryEmbedding(dim, theta, ...) with forward(t) is not the course's class: with
    Hugging Face code beside it, the convention grades RotaryEmbedding, and the learner's own
    functions are graded as theirs (before: graded as the course's class, and the rest hidden)."""
    hf = (FOLDER / "huggingface" / "correct.py").read_text()
    report = grade_file(write(tmp_path / "mixed.py", _without_rotary_embedding(), hf, LIBRARY_ROTARY))
    entries = {e["id"]: e for e in report["exercises"]}
    assert sorted(entries) == sorted(e.id for e in section_exercises("rope")), report
    for exercise_id, entry in entries.items():
        assert entry["score"] == entry["max_score"] == EXERCISES[exercise_id].points, entry
    assert any("RotaryEmbedding is your LlamaRotaryEmbedding" in n for n in rendered_notes(report))


def test_rotary_embedding_torch_beside_the_learners_functions_grades_only_its_class(tmp_path):
    """lucidrains' RotaryEmbedding(dim, theta=...) shadows the course's name: graded through its
    convention, while the learner's own rope functions stay theirs."""
    lucidrains = (FOLDER / "lucidrains" / "correct.py").read_text()
    report = grade_file(write(tmp_path / "mixed.py", _without_rotary_embedding(), lucidrains))
    entries = {e["id"]: e for e in report["exercises"] if e["id"].startswith("rope.")}
    assert sorted(entries) == sorted(e.id for e in section_exercises("rope")), report
    for exercise_id, entry in entries.items():
        assert entry["score"] == entry["max_score"] == EXERCISES[exercise_id].points, entry
    notes = rendered_notes(report)
    assert any("rope graded through the rotary-embedding-torch convention: RotaryEmbedding is" in n
               for n in notes), notes
    assert not any("apply_rope is your apply_rotary_emb" in n for n in notes), notes


def test_the_courses_rotary_embedding_is_never_taken_for_rotary_embedding_torchs(tmp_path):
    """The course's RotaryEmbedding(d, base, max_len, interleaved) defined after lucidrains' file: it
    is the learner's, graded as the course's class, and no rotary-embedding-torch convention applies."""
    lucidrains = (FOLDER / "lucidrains" / "correct.py").read_text()
    report = grade_file(write(tmp_path / "mixed.py", lucidrains, (ROOT / "solutions" / "rope.py").read_text()))
    entries = {e["id"]: e for e in report["exercises"]}
    for exercise in section_exercises("rope"):
        assert entries[exercise.id]["score"] == entries[exercise.id]["max_score"] == exercise.points, entries
    assert not any("rotary-embedding-torch" in note for note in rendered_notes(report)), rendered_notes(report)


def test_a_library_rotary_embedding_no_convention_fits_is_named_not_tested(tmp_path):
    report = grade_file(write(tmp_path / "mixed.py", _without_rotary_embedding(), LIBRARY_ROTARY))
    entries = {e["id"]: e for e in report["exercises"]}
    rotary = entries.pop("rope.RotaryEmbedding")
    assert rotary["score"] == 0 and rotary["status"] == "not_defined", rotary
    assert "class RotaryEmbedding(dim, theta=..., interpolate_factor=...) with forward(t)" in rotary["feedback"]
    assert "--adapter" in rotary["feedback"] and not rotary["checks"], rotary
    for exercise_id, entry in entries.items():
        assert entry["score"] == entry["max_score"] == EXERCISES[exercise_id].points, entry
    found = not_recognised(report, "rope")["found"]
    assert parameters(found, "RotaryEmbedding", "forward") == ["t"]


def test_a_file_with_nothing_recognised_says_so(tmp_path):
    report = grade_file(write(tmp_path / "mywork.py", "def helper(x):\n    return x\n"))
    assert report["exercises"] == [] and report["score"] == 0 and "--adapter" in report["error"], report
    note = not_recognised(report, None)
    assert note["found"] == [] and note["tried"] == []


@pytest.mark.parametrize("reply", [
    None, [], "signatures", {"apply_rotary_emb": "function"},
    {"apply_rotary_emb": {"kind": "function", "parameters": [["x" * 5000, "positional_or_keyword", False]]}},
    {"apply_rotary_emb": {"kind": "function", "parameters": [["x", "positional_or_keyword", False]] * 10_000}},
    {"apply_rotary_emb": {"kind": "function", "parameters": [["x", "weird", 0], ["y", "keyword_only", "no"]]}},
    {"apply_rotary_emb": {"kind": "module", "parameters": []}, "__import__('os')": {"kind": "class"}},
], ids=["none", "list", "text", "flat", "long_name", "huge", "garbled", "bad_kind"])
def test_a_hostile_signature_reply_is_read_as_no_signature(reply):
    from course.grading.conventions.signatures import Call, fits, read_signatures

    read = read_signatures(reply, ["apply_rotary_emb", "precompute_freqs_cis"])
    assert set(read) <= {"apply_rotary_emb"}
    assert not any(fits(s, Call((1,))) or fits(s, Call((3,))) for s in read.values()), read


def test_a_learner_process_that_forges_its_signatures_gets_no_convention(tmp_path):
    """The learner's code answers "signatures" itself, as a Meta-style fit for gpt-fast's functions:
    the probe still finds that what the convention made does not behave, and nothing is zeros."""
    forge = '''
import course.sandbox.child as _child
_child._signature = lambda value: {"kind": "function", "parameters": [[n, "positional_or_keyword", False]
                                                                        for n in ("a", "b", "c")]}
'''
    report = grade_file(write(tmp_path / "rope.py", GPT_FAST, forge))
    assert report["exercises"] == [] and "error" in report, report
    assert [t["convention"] for t in not_recognised(report, "rope")["tried"]] == ["Meta's Llama convention"]


def test_a_hugging_face_module_that_does_not_move_its_buffers_passes_the_device_check(tmp_path):
    """A model moves its modules to the input's device; the convention's apply_rope does too."""
    hf = (FOLDER / "huggingface" / "correct.py").read_text().replace("inv_freq_expanded.to(x.device)",
                                                                      "inv_freq_expanded")
    assert "inv_freq_expanded @" in hf
    report = grade_file(write(tmp_path / "rope.py", hf), only=["rope.apply_rope"])
    entry = {e["id"]: e for e in report["exercises"]}["rope.apply_rope"]
    assert entry["score"] == entry["max_score"] == EXERCISES["rope.apply_rope"].points, entry


def test_suggest_adapter_prints_a_starting_adapter_naming_the_functions_found(tmp_path):
    path = write(tmp_path / 'gpt"""fast.py', GPT_FAST)
    done = subprocess.run([sys.executable, "-m", "course.grade", str(path), "--suggest-adapter"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    tree = ast.parse(done.stdout)  # a file name cannot end its docstring
    assert "precompute_freqs_cis(seq_len, n_elem, base=...)" in done.stdout
    assert "apply_rotary_emb(x, freqs_cis)" in done.stdout
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert defined == {"apply_rope"}, defined
    assert "from course.adapting import" in done.stdout


# ---------------------------------------------------------------- the adapter helpers
def test_layout_helpers_go_there_and_back():
    import torch

    from course.adapting import from_layout, heads_from_layout, heads_to_layout, to_layout

    x = torch.randn(2, 3, 5, 8)
    shapes = {"bthd": (6, 5, 1, 8), "bhtd": (6, 1, 5, 8), "tbhd": (5, 6, 1, 8)}
    for layout, shape in shapes.items():
        y = to_layout(x, layout)
        assert tuple(y.shape) == shape
        assert torch.equal(y.reshape(-1, 8) if layout != "tbhd" else y.transpose(0, 1).reshape(-1, 8),
                           x.reshape(-1, 8))
        assert torch.equal(from_layout(y, layout, x), x)
    tokens = to_layout(x, "bthd", tokens=True)
    assert tuple(tokens.shape) == (1, 30, 1, 8) and torch.equal(from_layout(tokens, "bthd", x), x)
    q = torch.randn(2, 4, 5, 8)  # (B, H, T, D)
    assert torch.equal(heads_to_layout(q, "bthd"), q.transpose(1, 2))
    assert torch.equal(heads_to_layout(q, "tbhd"), q.permute(2, 0, 1, 3))
    for layout in shapes:
        assert torch.equal(heads_from_layout(heads_to_layout(q, layout), layout, q), q)
    with pytest.raises(ValueError, match="layout"):
        to_layout(x, "bdht")


def test_attention_with_bias_and_float32_helpers_match_torch():
    import torch
    import torch.nn.functional as F

    from course.adapting import attention_with_bias, in_float32

    q, k, v = torch.randn(2, 3, 4, 8), torch.randn(2, 3, 6, 8), torch.randn(2, 3, 6, 5)
    bias = torch.randn(3, 1, 6)
    keep = torch.ones(4, 6, dtype=torch.bool).tril(diagonal=2)  # the queries are the last 4 of 6 positions
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.masked_fill(~keep, float("-inf")))
    assert torch.allclose(attention_with_bias(q, k, v, bias), expected, atol=1e-5)
    assert torch.allclose(attention_with_bias(q, k, v, bias, causal=False),
                          F.scaled_dot_product_attention(q, k, v, attn_mask=bias.expand(3, 4, 6)), atol=1e-5)
    seen = []
    out = in_float32(lambda a, b: (seen.append((a.dtype, b.dtype)), a + b)[1], q.half(), k[..., :4, :].half())
    assert seen == [(torch.float32, torch.float32)] and out.dtype == torch.float16


def test_the_course_solutions_fit_the_contract_calls_and_pass_every_probe():
    """What marks a name as another library's (CONTRACT_CALLS) and the probe call must both accept
    the course's own solutions, read through the learner process's signature report."""
    from course.adapting.probe import probe
    from course.grading.conventions import CONTRACT_CALLS
    from course.grading.conventions.signatures import fits, read_signatures
    from course.sandbox.child import _signature

    for name, call in CONTRACT_CALLS.items():
        section = next(e.section for e in EXERCISES.values() if e.name == name)
        solution = importlib.import_module(f"solutions.{section}")
        value = getattr(solution, name)
        reply = json.loads(json.dumps({name: _signature(value)}))  # as it crosses the channel
        assert fits(read_signatures(reply, [name]).get(name), call), (name, reply)
        probe(name, value)


def test_a_learner_process_that_floods_its_signature_answer_gets_no_convention(tmp_path):
    """Code the Hugging Face convention fits, whose process answers "signatures" with megabytes:
    the answer is refused (no convention without signatures), and the report says nothing was recognised."""
    flood = '''
import course.sandbox.child as _child
_child._signature = lambda value: {"kind": "function",
                                   "parameters": [["p" * 200, "positional_or_keyword", False]] * 200_000}
'''
    report = grade_file(write(tmp_path / "rope.py", (FOLDER / "huggingface" / "correct.py").read_text(), flood))
    assert report["exercises"] == [] and "--adapter" in report["error"], report
    assert not any(n["kind"] == "convention" for n in report["notes"]), report["notes"]
