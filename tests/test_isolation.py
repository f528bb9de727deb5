"""The learner's process under attack.

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
import shutil
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
from course.sandbox.fork_client import shared_fork_server
from course.grading.report import rendered_notes, schema_errors

ROOT = Path(__file__).resolve().parents[1]
ATTACKS = ROOT / "tests" / "attacks"
FAST = Limits(call_seconds=2.0, cell_seconds=20.0, exercise_seconds=5.0, file_seconds=120.0)
CLI_FAST = ["--call-seconds", "2", "--exercise-seconds", "5", "--cell-seconds", "20"]
SURVIVAL_GRACE = 10.0  # killed processes with big address spaces take a moment to vanish

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox's guarantees are Linux's")


# -- helpers -----------------------------------------------------------------------
def attack(name: str, folder: Path, marker: str, suffix: str = ".py", fill: dict | None = None) -> tuple[Path, str, str]:
    """(submission path, section, exercise the attack breaks): the section's solutions plus the attack
    (with the placeholders of `fill` replaced: one attack file, several variants)."""
    text = (ATTACKS / f"{name}.py").read_text()
    for placeholder, value in (fill or {}).items():
        text = text.replace(placeholder, value)
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
        self.marker, self.most, self.seen = marker, 0, set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            found = marked(self.marker)
            self.most, self.seen = max(self.most, len(found)), self.seen | set(found)
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
    assert json.loads(json.dumps(report)) == report and schema_errors(report) == []
    assert not report.get("error"), report.get("error")
    ids = [e["id"] for e in report["exercises"]]
    assert ids == [e.id for e in section_exercises(section)]
    for e in report["exercises"]:
        assert {"id", "score", "max_score", "feedback"} <= set(e)  # the contract's fields (and the schema's)
        assert 0 <= e["score"] <= e["max_score"] and isinstance(e["feedback"], str)
    assert report["score"] == round(sum(e["score"] for e in report["exercises"]), 2)
    assert report["max_score"] == sum(e["max_score"] for e in report["exercises"])
    return {e["id"]: e for e in report["exercises"]}


def assert_only_target_loses(by_id: dict, target: str) -> None:
    assert by_id[target]["score"] < by_id[target]["max_score"], f"{target} kept its points"
    collateral = {i: e["feedback"] for i, e in by_id.items() if i != target and e["score"] < e["max_score"]}
    assert not collateral, f"the attack also cost points in {collateral}"


def grade_attack(name: str, tmp_path: Path, limits: Limits = FAST, fill: dict | None = None):
    """Grade attack `name` in-process; check the general promises; return (exercises by id, target, watch, seconds)."""
    marker = new_marker()
    path, section, target = attack(name, tmp_path, marker, fill=fill)
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


def test_what_a_learner_returns_cannot_swell_the_report(tmp_path):
    """The bug zoo's diagnosis() returns a lying mapping with a 3 MB "key", which a check's message
    echoes: the message is cut, the report stays small, and the answer scores as the wrong one it is."""
    by_id, target, _, _ = grade_attack("zoo_hostile_answer", tmp_path)
    assert by_id[target]["score"] == 0
    assert "more characters" in by_id[target]["feedback"]
    assert len(json.dumps(by_id)) < 100_000, len(json.dumps(by_id))


@pytest.mark.parametrize("payload,why", [("colliding_set", "share a hash"), ("colliding_dict", "share a hash"),
                                         ("huge_head", "JSON head of"), ("deep", "recursion"), ("huge_int", "digits")])
def test_replies_costly_to_decode_are_refused(payload, why, tmp_path):
    by_id, target, _, _ = grade_attack("channel_decode", tmp_path, fill={"__PAYLOAD__": payload})
    assert "not plain data" in by_id[target]["feedback"] and why in by_id[target]["feedback"], by_id[target]["feedback"]


def test_a_process_that_ends_after_its_reply_costs_nobody(tmp_path):
    """rope_inv_freq answers right, then its process ends: the calls after it (of its exercise and of the
    next one) are answered by a fresh process, and no test fails."""
    marker = new_marker()
    path, section, _ = attack("exit_after_reply", tmp_path, marker)
    with Watch(marker) as watch:
        report = grade_file(path, limits=FAST)
    by_id = assert_valid(report, section)
    assert all(e["score"] == e["max_score"] for e in by_id.values()), by_id
    # two ended processes already prove a request was answered by a replacement; the watch samples every
    # 20 ms, and under load it missed the third short-lived one (seen in CI)
    assert len(watch.seen) >= 2, f"the attack ended too few processes to prove anything: {watch.seen}"
    assert_nothing_survives(marker)


def test_a_process_found_ended_is_replaced_before_the_request_is_sent(monkeypatch):
    """The check before each request: the call goes once, to a fresh process, not first to the ended one."""
    from course.sandbox.learner_process import LearnerProcess

    ending = ("import os, sys, threading, time\n"
              "def replied():  # the main thread waits for the next request\n"
              "    frame = sys._current_frames().get(threading.main_thread().ident)\n"
              "    while frame is not None and frame.f_code.co_name != '_recv_exact':\n"
              "        frame = frame.f_back\n"
              "    return frame is not None\n"
              "def end_after_reply():\n"
              "    while not replied():\n"
              "        time.sleep(0.001)\n"
              "    os._exit(0)\n"
              "def echo(x):\n"
              "    return x\n")
    sandbox = LearnerProcess([("1", ending)])
    sent = []
    exchange = LearnerProcess._exchange
    monkeypatch.setattr(LearnerProcess, "_exchange", lambda self, message, *rest: (sent.append(message["op"]), exchange(self, message, *rest))[1])
    try:
        sandbox.start()
        sandbox.request({"op": "exec", "label": "2", "code": "threading.Thread(target=end_after_reply).start()"})
        pid, generation = sandbox._pid, sandbox.generation
        deadline = time.monotonic() + 30
        while not learner_process._process_ended(pid, sandbox._sock) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert learner_process._process_ended(pid, sandbox._sock), "the process did not end: the test proves nothing"
        sent.clear()
        call = {"op": "call", "target": {"__global__": "echo"}, "args": [7], "kwargs": {}}
        assert sandbox.request(call)["result"] == 7
        assert sent.count("call") == 1 and sandbox.generation == generation + 1, (sent, sandbox.generation)
    finally:
        sandbox.close()


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
                     file_seconds=26.0)
    report = grade_file(path, limits=limits)
    by_id = {e["id"]: e for e in report["exercises"]}
    assert by_id["alibi.alibi_bias"]["score"] == by_id["alibi.alibi_bias"]["max_score"] > 0, by_id["alibi.alibi_bias"]
    assert by_id["alibi.alibi_slopes"]["score"] == 0, by_id["alibi.alibi_slopes"]
    hung = [n for n in rendered_notes(report) if "did not finish" in n]
    assert len(hung) == 8 and sum("0.5 s" in n for n in hung) == 7, rendered_notes(report)


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


# -- limits on one file and on top-level code --------------------------------
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
    notes = "\n".join(rendered_notes(report))
    for cell in (3, 4, 5, 6):
        assert f"cell {cell}:" in notes
    assert "cell 7:" not in notes


def test_a_graded_file_too_large_is_refused_before_it_is_parsed(tmp_path, monkeypatch):
    """Parsed JSON takes up to ~25 times its size (24 MB of notebook: 0.6 GB): a file over the limit
    is not parsed at all; one at the limit is."""
    from course.grading import submission

    limit = submission.MAX_FILE_MB * 2**20
    small = _notebook(tmp_path / "small.ipynb", [(ROOT / "solutions" / "rope.py").read_text()])
    padding = limit - small.stat().st_size
    nb = json.loads(small.read_text())
    nb["metadata"]["padding"] = "x" * (padding - len(',"padding":""'))  # (json.dumps without spaces below)
    at_limit, over = tmp_path / "at_limit.ipynb", tmp_path / "over.ipynb"
    at_limit.write_text(json.dumps(nb, separators=(",", ":")))
    nb["metadata"]["padding"] += "x" * (limit + 1 - at_limit.stat().st_size)
    over.write_text(json.dumps(nb, separators=(",", ":")))
    module = tmp_path / "over.py"
    module.write_bytes(b"#" * limit + b"\n")
    assert at_limit.stat().st_size <= limit < over.stat().st_size
    assert submission.read_submission(at_limit).cells
    monkeypatch.setattr(submission, "_notebook_cells", lambda *a: pytest.fail("a notebook over the limit was parsed"))
    monkeypatch.setattr(submission.importlib.util, "decode_source", lambda *a: pytest.fail("a module over the limit was read"))
    for path in (over, module):
        with pytest.raises(submission.UnreadableSubmission, match=f"larger than the {submission.MAX_FILE_MB} MB"):
            submission.read_submission(path)
    monkeypatch.undo()
    report = grade_file(module, limits=FAST)
    assert report["exercises"] == [] and f"larger than the {submission.MAX_FILE_MB} MB" in report["error"]


def test_a_report_holds_a_bounded_number_of_notes(tmp_path):
    """Thousands of cells that raise: the first MAX_NOTES are named, then how many more there were."""
    from course.grading.grader import MAX_NOTES

    cells = [(ROOT / "solutions" / "rope.py").read_text()] + [f"raise ValueError({i})" for i in range(3000)]
    report = grade_file(_notebook(tmp_path / "noisy.ipynb", cells), limits=FAST)
    by_id = assert_valid(report, "rope")
    assert all(e["score"] == e["max_score"] for e in by_id.values()), by_id
    assert [(n["kind"], n["cell"], n["detail"]) for n in report["notes"][:MAX_NOTES]] == [
        ("cell_raised", str(i + 2), f"ValueError: {i}") for i in range(MAX_NOTES)]
    assert rendered_notes(report)[MAX_NOTES:] == [f"... and {3000 - MAX_NOTES} more cells that raised or hung"]


def test_submission_limit_still_gives_a_valid_report(tmp_path):
    solution = (ROOT / "solutions" / "rope.py").read_text()
    path = _notebook(tmp_path / "slow.ipynb", ["import time", solution] + ["time.sleep(100)"] * 6)
    limits = Limits(call_seconds=2.0, cell_seconds=3.0, exercise_seconds=5.0, file_seconds=8.0)
    begin = time.monotonic()
    report = grade_file(path, limits=limits)
    assert time.monotonic() - begin < 60  # generous: the cells alone would take 600 s
    by_id = assert_valid(report, "rope")
    assert report["score"] < report["max_score"]
    assert any("time limit for this file (8 s" in e["feedback"] for e in by_id.values())
    assert any("not run" in note for note in rendered_notes(report))


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
    assert re.search(r"fork_server_environ: (none|DENIED)", found)
    if isolation.get("landlock") or isolation.get("uid") in ("own", "own+read"):
        assert secret not in json.dumps(report)
        assert "grader_environ: DENIED" in found
    if not isolation.get("landlock"):
        pytest.skip("without Landlock the learner's process can read what its user can read")
    for what in ("suite", "solution", "notebook", "git", "listing"):
        assert f"{what}: DENIED" in found and f"{what}: READ" not in found, found
    assert "suite: DENIED PermissionError" in found and "solution: DENIED PermissionError" in found
    assert isolation.get("readable_protected") == []


def test_the_grader_and_fork_server_cannot_be_signalled(isolation, tmp_path):
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
        "import importlib, pkgutil\nimport course.learner.visible_checks as checks\nimport course.nbgrader_bridge\n"
        "for found in pkgutil.iter_modules(checks.__path__):\n"
        "    importlib.import_module(f'course.learner.visible_checks.{found.name}')",
    ]
    report = grade_file(_notebook(tmp_path / "ordinary.ipynb", cells), limits=FAST)
    by_id = assert_valid(report, "rope")
    assert not rendered_notes(report), rendered_notes(report)
    assert all(e["score"] == e["max_score"] for e in by_id.values())


def test_fallback_without_the_optional_layers_still_grades(monkeypatch):
    monkeypatch.setattr(learner_process, "LAYERS", {"uid": False, "landlock": False, "seccomp": False})
    status = isolation_status()
    assert status["landlock"] == 0 and "seccomp" not in status
    report = grade_file(ROOT / "solutions" / "rope.py", limits=FAST)
    assert report["score"] == report["max_score"] > 0


def test_grading_recovers_when_the_fork_server_is_gone():
    """If something outside kills the fork server, the next sandbox starts a new one."""
    import signal

    server = shared_fork_server()
    os.kill(server.pid, signal.SIGKILL)
    server._proc.wait(timeout=30)
    report = grade_file(ROOT / "solutions" / "rope.py", limits=FAST)
    assert report["score"] == report["max_score"] > 0
    assert shared_fork_server().pid != server.pid


# -- the kernel's less guarded doors (seccomp) -------------------------------------------
DENIED_SYSCALLS = ("unshare_user", "unshare_net", "unshare_mount", "clone_user", "clone_pid", "setns", "keyctl",
                   "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd", "personality_no_aslr")


def _account(feedback: str, word: str) -> dict:
    """The JSON an attack put after `word` in the message it raised."""
    found = re.search(word + r" (\{.*?\})", feedback)
    assert found, feedback
    return json.loads(found.group(1))


def test_namespaces_keyring_bpf_perf_and_personality_are_denied(isolation, tmp_path):
    """Each call fails with EPERM (clone3, whose flags seccomp cannot read, with ENOSYS: glibc then
    uses clone, whose flags it can), while threads, fork, subprocesses and torch's threads work and
    every other exercise keeps its points."""
    if isolation.get("seccomp") is not True:
        pytest.skip("no seccomp filter on this platform")
    by_id, target, _, _ = grade_attack("syscalls", tmp_path)
    found = _account(by_id[target]["feedback"], "SYSCALLS")
    assert {k: found[k] for k in DENIED_SYSCALLS} == dict.fromkeys(DENIED_SYSCALLS, "EPERM"), found
    assert found["clone3_user"] == found["clone3_plain"] == "ENOSYS", found
    assert found["personality_query"] == "ok", found
    assert {k: found[k] for k in ("thread", "fork", "subprocess", "torch_threads")} == dict.fromkeys(
        ("thread", "fork", "subprocess", "torch_threads"), "ok"), found


def test_a_pinned_learner_cannot_widen_its_cpu_affinity(isolation, tmp_path):
    """The grader runs on one core (as a pinned batch worker does): the learner's process asks for
    every core and must still be on that one."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2 or isolation.get("seccomp") is not True:
        pytest.skip("needs two cores and the seccomp filter")
    path, section, target = attack("affinity", tmp_path, new_marker())
    done = subprocess.run([sys.executable, "-m", "course.grade", str(path), "--format", "json", *CLI_FAST],
                          capture_output=True, text=True, timeout=300, cwd=ROOT,
                          preexec_fn=lambda: os.sched_setaffinity(0, {cores[-1]}))
    assert done.returncode == 0, done.stderr[-3000:]
    by_id = assert_valid(json.loads(done.stdout), section)
    assert_only_target_loses(by_id, target)
    found = _account(by_id[target]["feedback"], "AFFINITY")
    assert found == {"asked": "PermissionError", "cores": str(cores[-1])}, found


def test_the_course_own_implementations_cannot_be_wrapped(isolation, tmp_path):
    """The lab's alibi_slopes, imported from course.lab and wrapped, earns nothing: with Landlock
    the learner's process reads only its part of the course package."""
    if not isolation.get("landlock"):
        pytest.skip("without Landlock the learner's process can read the whole course package")
    path, section, target = attack("wrap_lab", tmp_path, new_marker())
    by_id = assert_valid(grade_file(path, limits=FAST), section)  # (the exercises calling it fail with it)
    assert by_id[target]["score"] == 0, by_id[target]
    assert "PermissionError" in by_id[target]["feedback"], by_id[target]["feedback"]


def test_a_course_package_in_site_packages_is_opened_only_in_part(tmp_path):
    """Installed (not editable), the course package sits in site-packages, which the learner's
    process reads: site-packages is then opened entry by entry, all but the package."""
    from course.sandbox.isolation import allowed_reads

    site = tmp_path / "site-packages"
    for folder in ("torch", "course/lab", "course/sandbox"):
        (site / folder).mkdir(parents=True)
    (site / "six.py").write_text("")
    keep, exposed = allowed_reads([str(site), str(site / "course" / "sandbox")], [], None, [str(site / "course")])
    assert sorted(keep) == sorted(str(p) for p in (site / "torch", site / "six.py", site / "course" / "sandbox"))
    assert exposed == []


# -- a class is graded only by code no learner could change --------------------------------
def _unconfined(**extra) -> dict:
    """The grader's environment on a platform without Landlock, as a user whose learners share its uid."""
    from course.sandbox.confinement import WITHOUT_ENV

    return {**os.environ, WITHOUT_ENV: "landlock,uid", **extra}


def _batch(submissions: Path, out: Path, *args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "course.batch", str(submissions), "--out", str(out), "--workers", "1",
                           "--no-progress", *CLI_FAST, *args], capture_output=True, text=True, timeout=600, cwd=ROOT,
                          env=env)


def test_class_modes_refuse_to_grade_unconfined(tmp_path):
    """course.batch and course.grade --serve grade nobody where a learner's process could write the
    grader's files, unless told --allow-unconfined."""
    submissions = tmp_path / "class"
    submissions.mkdir()
    (submissions / "alice.py").write_text((ROOT / "solutions" / "rope.py").read_text())
    refused = _batch(submissions, tmp_path / "out", env=_unconfined())
    assert refused.returncode == 3 and "--allow-unconfined" in refused.stderr, refused.stderr[-2000:]
    assert not (tmp_path / "out" / "students" / "alice.json").exists()
    request = json.dumps({"id": "alice", "request": {"paths": [str(submissions / "alice.py")]}}) + "\n"
    served = subprocess.run([sys.executable, "-m", "course.grade", "--serve", *CLI_FAST], input=request,
                            capture_output=True, text=True, timeout=300, cwd=ROOT, env=_unconfined())
    assert served.returncode == 3 and served.stdout == "" and "--allow-unconfined" in served.stderr, served.stderr
    allowed = _batch(submissions, tmp_path / "out", "--allow-unconfined", env=_unconfined())
    assert allowed.returncode == 0, allowed.stderr[-2000:]
    record = json.loads((tmp_path / "out" / "students" / "alice.json").read_text())
    assert record["status"] == "graded" and record["score"] == record["max_score"] > 0, record


def test_a_learner_who_rewrites_the_suites_stops_the_batch(tmp_path):
    """Unconfined (--allow-unconfined), the first learner appends to a hidden suite: their report
    says grading stopped, the batch exits with 3, and the next learner is not graded with it."""
    suites = tmp_path / "suites"
    shutil.copytree(ROOT / "grader_tests", suites, ignore=shutil.ignore_patterns("__pycache__"))
    submissions = tmp_path / "class"
    submissions.mkdir()
    path, _, _ = attack("rewrite_suites", tmp_path, new_marker())
    (submissions / "a_tamperer.py").write_text(path.read_text().replace("__SUITES__", str(suites)))
    (submissions / "b_honest.py").write_text((ROOT / "solutions" / "rope.py").read_text())
    done = _batch(submissions, tmp_path / "out", "--allow-unconfined", env=_unconfined(COURSE_GRADER_TESTS=str(suites)))
    assert "rewritten by a learner" in (suites / "test_rope.py").read_text()  # the attack did write
    assert done.returncode == 3 and "changed while learners were graded" in done.stderr, done.stderr[-2000:]
    record = json.loads((tmp_path / "out" / "students" / "a_tamperer.json").read_text())
    assert record["status"] == "grader-failed" and "changed while learners were graded" in record["error"], record
    assert not (tmp_path / "out" / "students" / "b_honest.json").exists()


def test_a_graded_name_from_the_course_package_is_noted(tmp_path, monkeypatch):
    """Without Landlock the lab's alibi_slopes can be imported as it is: the report notes that it
    is not the learner's code (and nothing about the names the learner wrote)."""
    monkeypatch.setattr(learner_process, "LAYERS", {"uid": True, "landlock": False, "seccomp": True})
    path = tmp_path / "alibi.py"
    path.write_text((ROOT / "solutions" / "alibi.py").read_text() + "\nfrom course.lab.model import alibi_slopes\n")
    report = grade_file(path, only=["alibi.alibi_slopes", "alibi.alibi_bias"], limits=FAST)
    noted = [n for n in rendered_notes(report) if "not from your own code" in n]
    assert len(noted) == 1 and "`alibi_slopes`" in noted[0] and "course.lab.model" in noted[0], rendered_notes(report)


def test_a_file_handle_does_not_open_a_hidden_suite(isolation, tmp_path):
    """open_by_handle_at takes no path (and a learner graded as root may keep CAP_DAC_READ_SEARCH):
    Landlock still refuses the hidden suite."""
    if not isolation.get("landlock"):
        pytest.skip("without Landlock the learner's process can read what its user can read")
    by_id, target, _, _ = grade_attack("file_handle", tmp_path)
    feedback = by_id[target]["feedback"]
    assert "HANDLE " in feedback and "HANDLE READ" not in feedback, feedback


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
    from course.sandbox.learner_process import LearnerProcess, SubmissionCrashed

    (tmp_path / "data.txt").write_text("mine\n")
    sandbox = LearnerProcess([("1", "x = 1")], replace(FAST, scratch_mb=8), files=[("data.txt", tmp_path / "data.txt")])
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


def test_the_course_reference_is_never_graded_as_the_learners(tmp_path):
    """use_reference binds the course's version for a notebook's demonstrations; inside the grader
    it does nothing, so the learner's own (unwritten) function is what is graded."""
    by_id, target, _, _ = grade_attack("use_reference", tmp_path)
    assert by_id[target]["score"] == 0 and "NotImplementedError" in by_id[target]["feedback"], by_id[target]
