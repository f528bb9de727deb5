"""The learner's process under attack (issue 5, item 1).

Each submission in tests/attacks/ is a correct solutions module with one attack added (at
import or inside one graded function). Graded through ``grade_file`` and the CLI, with
small time limits, it must give: a valid report; no points for the attacked exercise;
full points for every exercise the attack did not break; and, once grading returns, no
process the submission started (found in /proc by a marker in its name or command line).
What the platform cannot guarantee (e.g. unreadable hidden files without Landlock) is
checked only where ``isolation_status()`` says the layer is in force.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest

from course.exercises import section_exercises
from course.grading.grader import grade_file
from course.sandbox import learner_process
from course.sandbox.learner_process import Limits, isolation_status
from course.sandbox.zygote import shared_zygote

ROOT = Path(__file__).resolve().parents[1]
ATTACKS = ROOT / "tests" / "attacks"
FAST = Limits(call_seconds=2.0, cell_seconds=20.0, exercise_seconds=5.0, submission_seconds=120.0)
CLI_FAST = ["--call-seconds", "2", "--exercise-seconds", "5", "--cell-seconds", "20"]
SURVIVAL_GRACE = 10.0  # killed processes with big address spaces take a moment to vanish

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox's guarantees are Linux's")


# -- helpers -----------------------------------------------------------------------
def attack(name: str, folder: Path, marker: str, suffix: str = ".py") -> tuple[Path, str, str]:
    """(submission path, section, exercise the attack breaks): the section's solutions plus the attack."""
    text = (ATTACKS / f"{name}.py").read_text()
    header = re.match(r"# section: (\w+); breaks: ([\w.]+)", text)
    section, target = header.group(1), header.group(2)
    source = (ROOT / "solutions" / f"{section}.py").read_text()
    path = folder / f"{name}{suffix}"
    path.write_text(source + "\n\n# --- the attack ---\n" + text.replace("__MARKER__", marker))
    return path, section, target


def new_marker() -> str:
    return "atk" + uuid.uuid4().hex[:10]  # fits a process name (15 bytes)


def marked(marker: str) -> list[str]:
    """Processes whose name or command line carries `marker`."""
    needle, hits = marker.encode(), []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/comm", "rb") as f:
                comm = f.read()
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if needle in comm or needle in cmdline:
            hits.append(f"{name} {comm.strip().decode(errors='replace')}")
    return hits


class Watch:
    """Polls /proc while grading runs, to prove the attack's processes did exist."""

    def __init__(self, marker: str):
        self.marker, self.most = marker, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.most = max(self.most, len(marked(self.marker)))
            self._stop.wait(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def assert_nothing_survives(marker: str) -> None:
    deadline = time.monotonic() + SURVIVAL_GRACE
    while marked(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not marked(marker), f"processes of the submission outlived grading: {marked(marker)}"


def assert_valid(report: dict, section: str) -> dict:
    """The contract's report shape; returns the exercises by id."""
    assert json.loads(json.dumps(report)) == report
    assert not report.get("error"), report.get("error")
    ids = [e["id"] for e in report["exercises"]]
    assert ids == [e.id for e in section_exercises(section)]
    for e in report["exercises"]:
        assert set(e) == {"id", "score", "max_score", "feedback"}
        assert 0 <= e["score"] <= e["max_score"] and isinstance(e["feedback"], str)
    assert report["score"] == round(sum(e["score"] for e in report["exercises"]), 2)
    assert report["max_score"] == sum(e["max_score"] for e in report["exercises"])
    return {e["id"]: e for e in report["exercises"]}


def assert_only_target_loses(by_id: dict, target: str) -> None:
    assert by_id[target]["score"] < by_id[target]["max_score"], f"{target} kept its points"
    collateral = {i: e["feedback"] for i, e in by_id.items() if i != target and e["score"] < e["max_score"]}
    assert not collateral, f"the attack also cost points in {collateral}"


def grade_attack(name: str, tmp_path: Path, limits: Limits = FAST):
    """Grade attack `name` in-process; check the general promises; return (exercises by id, target, watch, seconds)."""
    marker = new_marker()
    path, section, target = attack(name, tmp_path, marker)
    begin = time.monotonic()
    with Watch(marker) as watch:
        report = grade_file(path, limits=limits)
    seconds = time.monotonic() - begin
    by_id = assert_valid(report, section)
    assert_only_target_loses(by_id, target)
    assert_nothing_survives(marker)
    return by_id, target, watch, seconds


def run_cli(path: Path, *args: str, env: dict | None = None, timeout: float = 300) -> dict:
    """`python -m course.grade PATH --format json`: exit 0 and stdout exactly one JSON report."""
    done = subprocess.run([sys.executable, "-m", "course.grade", str(path), "--format", "json", *CLI_FAST, *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def isolation() -> dict:
    return isolation_status()


# -- attacks with the general promises only --------------------------------------------
@pytest.mark.parametrize("name,says", [
    ("infinite_loop", "did not finish"),
    ("sys_exit", "SystemExit"),
    ("os_exit", "process running your code ended"),
    ("kill_self", "process running your code ended"),
    ("patch_internals", "checks fail"),
    ("break_defined", "checks fail"),
    ("hide_mutation", "in place"),
    ("channel_garbage", "grading channel"),
    ("channel_close", "process running your code ended"),
    ("channel_forge", "grading channel"),
    ("channel_inflate", "not plain data"),
    ("channel_drip", "did not finish"),
])
def test_attack_costs_only_the_exercise_it_breaks(name, says, tmp_path):
    by_id, target, _, _ = grade_attack(name, tmp_path)
    assert says in by_id[target]["feedback"]


def test_memory_exhaustion_fails_the_call_not_the_grader(tmp_path):
    # time limits generous enough that the memory cap, not a busy machine's clock, stops it
    by_id, target, _, _ = grade_attack("memory", tmp_path, replace(FAST, memory_mb=1200, call_seconds=30.0,
                                                                    exercise_seconds=120.0))
    assert re.search(r"allocate|MemoryError", by_id[target]["feedback"]), by_id[target]["feedback"]


def test_the_memory_limit_is_headroom_above_the_preloaded_libraries(tmp_path):
    """--memory-mb is what the learner's code may add to what torch, numpy and matplotlib map
    already (about 1 GB of address space for torch's CPU build, several GB for a CUDA build):
    300 MB fit in 600 MB of headroom and not in 150, whichever build is installed."""
    path = tmp_path / "hungry.py"
    path.write_text((ROOT / "solutions" / "rope.py").read_text().replace(
        "    exponents = torch.arange(0, d, 2, dtype=torch.float64) / d\n",
        "    exponents = torch.arange(0, d, 2, dtype=torch.float64) / d\n"
        "    torch.ones(75 * 1024 * 1024).sum()  # 300 MB, written\n"))
    only = ["rope.rope_inv_freq"]
    roomy = grade_file(path, only=only, limits=replace(FAST, memory_mb=600, call_seconds=30.0, exercise_seconds=60.0))
    tight = grade_file(path, only=only, limits=replace(FAST, memory_mb=150, call_seconds=30.0, exercise_seconds=60.0))
    assert roomy["score"] == roomy["max_score"] > 0, roomy
    assert tight["score"] < tight["max_score"], tight  # (only the test of a bad d, raised before, passes)
    assert re.search(r"allocate|MemoryError", tight["exercises"][0]["feedback"]), tight


def test_cells_calling_a_hung_function_do_not_use_up_the_submission(tmp_path):
    """alibi_slopes loops forever and eight demo cells call it: after the first cell hangs, the
    later ones get --cell-seconds-after-hang, so the tests of alibi_bias (correct, independent)
    still have time. With cell_seconds for every cell, the cells alone would take 32 s of the 26."""
    solution = (ROOT / "solutions" / "alibi.py").read_text()
    looping = solution.replace("def alibi_slopes(n_heads):\n", "def alibi_slopes(n_heads):\n    while True:\n        pass\n", 1)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(looping)] + \
        [nbformat.v4.new_code_cell(f"print(alibi_slopes({h}))") for h in range(1, 9)]
    path = tmp_path / "07_alibi.ipynb"
    nbformat.write(nb, path)
    limits = replace(FAST, cell_seconds=4.0, cell_seconds_after_hang=0.5, call_seconds=2.0, exercise_seconds=4.0,
                     submission_seconds=26.0)
    report = grade_file(path, limits=limits)
    by_id = {e["id"]: e for e in report["exercises"]}
    assert by_id["alibi.alibi_bias"]["score"] == by_id["alibi.alibi_bias"]["max_score"] > 0, by_id["alibi.alibi_bias"]
    assert by_id["alibi.alibi_slopes"]["score"] == 0, by_id["alibi.alibi_slopes"]
    hung = [n for n in report.get("notes", []) if "did not finish" in n]
    assert len(hung) == 8 and sum("0.5 s" in n for n in hung) == 7, report.get("notes")


def test_exercise_budget_caps_a_function_that_sleeps(tmp_path):
    """rope_matrix has 4 tests that would sleep 100 s each: the exercise gets 5 s in all."""
    by_id, target, _, seconds = grade_attack("sleep", tmp_path)
    assert "left of the 5 s for this exercise" in by_id[target]["feedback"]
    assert seconds < 60  # generous: ~5 s of sleeping plus a few restarts, against 400 s unbounded


@pytest.mark.parametrize("name", ["subprocess_sleep", "daemon", "fork_storm"])
def test_no_process_outlives_grading(name, tmp_path):
    _, _, watch, _ = grade_attack(name, tmp_path)
    assert watch.most >= 1, "the attack's processes were never seen: the test proves nothing"


def test_daemons_are_killed_even_without_the_optional_layers(tmp_path, monkeypatch):
    """Cleanup rests on the subreapers and /proc, not on Landlock or user ids."""
    monkeypatch.setattr(learner_process, "LAYERS", {"uid": False, "landlock": False, "seccomp": False})
    _, _, watch, _ = grade_attack("daemon", tmp_path)
    assert watch.most >= 1


def test_fork_storm_stops_at_the_process_limit(isolation, tmp_path):
    if isolation.get("uid") not in ("own", "own+read"):
        pytest.skip("the process limit needs a user id of the learner's own (grading as root)")
    limits = replace(FAST, processes=12)
    by_id, target, watch, _ = grade_attack("fork_storm", tmp_path, limits)
    assert "BlockingIOError" in by_id[target]["feedback"] or "Resource temporarily unavailable" in by_id[target]["feedback"]
    assert 1 <= watch.most <= 12


# -- limits on the whole submission and on top-level code --------------------------------
def _notebook(path: Path, cells: list[str]) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbformat.write(nb, path)
    return path


def test_top_level_attacks_in_cells_cost_only_their_cell(tmp_path):
    solution = (ROOT / "solutions" / "rope.py").read_text()
    path = _notebook(tmp_path / "cells.ipynb", [
        "import os, signal, sys, time",
        solution,
        "os._exit(3)",
        "os.kill(os.getpid(), signal.SIGKILL)",
        "while True:\n    pass",
        "sys.exit('bye')",
        "x = 1",
    ])
    report = grade_file(path, limits=replace(FAST, cell_seconds=3.0))
    by_id = assert_valid(report, "rope")
    assert all(e["score"] == e["max_score"] for e in by_id.values()), by_id
    notes = "\n".join(report["notes"])
    for cell in (3, 4, 5, 6):
        assert f"cell {cell}:" in notes
    assert "cell 7:" not in notes


def test_submission_limit_still_gives_a_valid_report(tmp_path):
    solution = (ROOT / "solutions" / "rope.py").read_text()
    path = _notebook(tmp_path / "slow.ipynb", ["import time", solution] + ["time.sleep(100)"] * 6)
    limits = Limits(call_seconds=2.0, cell_seconds=3.0, exercise_seconds=5.0, submission_seconds=8.0)
    begin = time.monotonic()
    report = grade_file(path, limits=limits)
    assert time.monotonic() - begin < 60  # generous: the cells alone would take 600 s
    by_id = assert_valid(report, "rope")
    assert report["score"] < report["max_score"]
    assert any("whole submission (8 s) is used up" in e["feedback"] for e in by_id.values())
    assert any("not run" in note for note in report["notes"])


# -- the report cannot be forged; nothing secret can be read; the grader cannot be hit ------
def test_fake_prints_do_not_reach_the_report(tmp_path):
    marker = new_marker()
    path, section, target = attack("fake_report", tmp_path, marker)
    report = run_cli(path)  # stdout must hold exactly one JSON object: the grader's
    by_id = assert_valid(report, section)
    assert_only_target_loses(by_id, target)
    assert marker not in json.dumps(report) and report["score"] < report["max_score"]
    assert "wrote the fake report" not in by_id[target]["feedback"]  # /proc/<grader>/fd/1 was out of reach
    in_process = grade_file(path, limits=FAST)
    assert in_process == report


def test_hidden_files_and_the_graders_environment_are_out_of_reach(isolation, tmp_path):
    secret = "SECRET-" + uuid.uuid4().hex
    path, section, target = attack("read_secrets", tmp_path, new_marker())
    report = run_cli(path, env={**os.environ, "COURSE_ATTACK_SECRET": secret})
    by_id = assert_valid(report, section)
    assert_only_target_loses(by_id, target)
    found = by_id[target]["feedback"]
    assert "LEAK-REPORT" in found, found
    # Its own environment is scrubbed, on every platform.
    assert "own_env: none" in found and "self_environ: none" in found
    assert re.search(r"zygote_environ: (none|DENIED)", found)
    if isolation.get("landlock") or isolation.get("uid") in ("own", "own+read"):
        assert secret not in json.dumps(report)
        assert "grader_environ: DENIED" in found
    if not isolation.get("landlock"):
        pytest.skip("without Landlock the learner's process can read what its user can read")
    for what in ("suite", "solution", "notebook", "git", "listing"):
        assert f"{what}: DENIED" in found and f"{what}: READ" not in found, found
    assert "suite: DENIED PermissionError" in found and "solution: DENIED PermissionError" in found
    assert isolation.get("readable_protected") == []


def test_the_grader_and_zygote_cannot_be_signalled(isolation, tmp_path):
    if not (isolation.get("landlock", 0) >= 6 or isolation.get("uid") in ("own", "own+read")):
        pytest.skip("needs Landlock signal scoping (Linux 6.12+) or a learner uid of its own (grading as root)")
    path, section, target = attack("signals", tmp_path, new_marker())
    report = run_cli(path, timeout=300)
    by_id = assert_valid(report, section)
    assert_only_target_loses(by_id, target)
    feedback = by_id[target]["feedback"]
    assert "SENT" not in feedback and "PermissionError" in feedback
    assert "'everyone-SIGKILL': 'returned'" in feedback  # and the grader lived on to report it


# -- what the confinement leaves to the learner ------------------------------------------
def test_isolation_status_on_this_machine(isolation):
    """The layers this platform allows are all in force (documented in the README)."""
    assert isolation["subreaper"] and isolation["no_new_privs"] and isolation["parent_death_kill"]
    from course.sandbox.isolation import landlock_abi

    assert isolation["landlock"] == landlock_abi()
    if isolation["landlock"]:
        assert isolation["readable_protected"] == []
    if os.geteuid() == 0:
        assert isolation["uid"] in ("own", "own+read")
    if os.uname().machine in ("x86_64", "aarch64"):
        assert isolation["seccomp"] is True
    assert not isolation.get("errors")


def test_confinement_keeps_what_learners_use(tmp_path):
    """Lazy imports, plots, temporary and home files, the course's self-check, a child Python."""
    cells = [
        "import math, json, csv, fractions, statistics, tempfile, subprocess, sys, os\n"
        "import torch\nimport torch.nn.functional as F\nfrom torch import nn\nimport numpy as np\n"
        "import matplotlib.pyplot as plt\nfrom course.selfcheck import check",
        (ROOT / "solutions" / "rope.py").read_text(),
        "fig, ax = plt.subplots()\nax.plot([1, 2, 3])\nfig.savefig('plot.png')\nassert os.path.getsize('plot.png') > 0",
        "fd, name = tempfile.mkstemp()\nos.write(fd, b'x')\nos.close(fd)\n"
        "open(os.path.expanduser('~/notes.txt'), 'w').write('hello')",
        "out = subprocess.run([sys.executable, '-c', 'import json; print(json.dumps(1))'], capture_output=True, text=True)\n"
        "assert out.stdout.strip() == '1', out",
        "import importlib.metadata\nassert importlib.metadata.version('torch')",
        "check('rope.apply_rope')",
    ]
    report = grade_file(_notebook(tmp_path / "ordinary.ipynb", cells), limits=FAST)
    by_id = assert_valid(report, "rope")
    assert not report.get("notes"), report.get("notes")
    assert all(e["score"] == e["max_score"] for e in by_id.values())


def test_fallback_without_the_optional_layers_still_grades(monkeypatch):
    monkeypatch.setattr(learner_process, "LAYERS", {"uid": False, "landlock": False, "seccomp": False})
    status = isolation_status()
    assert status["landlock"] == 0 and "seccomp" not in status
    report = grade_file(ROOT / "solutions" / "rope.py", limits=FAST)
    assert report["score"] == report["max_score"] > 0


def test_grading_recovers_when_the_fork_server_is_gone():
    """If something outside kills the zygote, the next sandbox starts a new one."""
    import signal

    zygote = shared_zygote()
    os.kill(zygote.pid, signal.SIGKILL)
    zygote._proc.wait(timeout=30)
    report = grade_file(ROOT / "solutions" / "rope.py", limits=FAST)
    assert report["score"] == report["max_score"] > 0
    assert shared_zygote().pid != zygote.pid


@pytest.mark.parametrize("name,says", [("fill_disk", "more than 32 MB"), ("many_files", "more than 2000 files")])
def test_filling_the_scratch_folder_costs_only_that_exercise(name, says, tmp_path):
    """Files below --file-mb, or empty ones, until the folder holds more than --scratch-mb (32 here)
    or 2000 files: the call fails (its process is killed, its folder reset to the learner's files),
    and the other exercises, tested in a fresh process, keep their points."""
    # time limits generous enough that the cap, not a busy machine's clock, stops it
    by_id, target, _, _ = grade_attack(name, tmp_path, replace(FAST, scratch_mb=32, call_seconds=60.0,
                                                               exercise_seconds=120.0))
    assert says in by_id[target]["feedback"], by_id[target]["feedback"]


def test_a_folder_over_the_cap_is_reset_to_the_learners_files(tmp_path):
    """The cap holds after the request too (not only between polls), and the next process finds
    the learner's files alone: the junk is gone from the disk."""
    from course.sandbox.learner_process import Sandbox, SubmissionCrashed

    (tmp_path / "data.txt").write_text("mine\n")
    sandbox = Sandbox([("1", "x = 1")], replace(FAST, scratch_mb=8), files=[("data.txt", tmp_path / "data.txt")])
    try:
        sandbox.start()
        write = "for i in range(3):\n    open(f'junk{i}', 'wb').write(b'x' * 2**22)\n"  # 12 MB, 4 MB a file
        with pytest.raises(SubmissionCrashed, match="more than 8 MB"):
            sandbox.request({"op": "exec", "label": "2", "code": write})
        assert sandbox.request({"op": "exec", "label": "3", "code": "import os\nfound = sorted(os.listdir())"}) is None
        names = {Path(path).name for path, *_ in sandbox.files_state()}
        assert "data.txt" in names and not {n for n in names if n.startswith("junk")}, names
    finally:
        sandbox.close()
