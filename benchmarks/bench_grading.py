"""How fast is grading? Prints figures; asserts nothing (timings depend on the machine and its load).

    python benchmarks/bench_grading.py                  # everything (about 10-30 min on 2 cores)
    python benchmarks/bench_grading.py --skip-class     # (a) only: one full-course submission
    python benchmarks/bench_grading.py --skip-nbgrader --class-size 20
    python benchmarks/bench_grading.py --workspace      # a solved workspace: time against import torch, memory

(a) One full-course submission (the eight solution notebooks with their hidden-test regions
    removed, as a learner who solved everything hands them in), graded
      - by `python -m course.grade FOLDER` (one cold process: imports, fork server, grading),
      - by a warm batch worker (course.platforms.batch_worker: what each further learner costs in a batch),
      - by `nbgrader autograde` on the same notebooks in a temporary course directory,
    and where the time goes in a warm process (cells in the learner processes, hidden suites).
(b) A class of N submissions through `python -m course.batch`: 1 worker confined to one core,
    then 1 and 2 workers on the whole machine: seconds per submission, throughput, and how it
    scales with cores (1 core -> 2) and with workers.

Every figure is a wall-clock time and the CPU time of the whole process tree (the grader,
its fork server and learner processes, nbgrader's kernels): on a shared machine the wall
clock also measures the other tenants, the CPU time much less so. The load average is
printed with each figure.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course.exercises import NOTEBOOKS, SECTIONS  # noqa: E402
from course.learner.workspace import _interpreter_bin_on_path  # noqa: E402

HIDDEN = re.compile(r"\n?### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", re.S)
SOLUTION = re.compile(r"^([ \t]*)### BEGIN SOLUTION.*?### END SOLUTION[^\n]*", re.S | re.M)
TICK = os.sysconf("SC_CLK_TCK")


# -- measuring --------------------------------------------------------------------------

def become_subreaper() -> None:
    """Orphaned descendants (fork servers, kernels) are re-parented to us, so that their CPU
    time ends up in RUSAGE_CHILDREN when we reap them."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
        print("note: could not become a child subreaper; CPU times may miss orphaned processes")


def reap_descendants(timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.1)


def children_cpu() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system


def load() -> str:
    return "load %.1f" % os.getloadavg()[0]


def run_measured(cmd, cwd=ROOT, env=None, cpus=None) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall seconds, CPU seconds of the whole process tree, result); `cpus`: confine the tree to them."""
    reap_descendants(1.0)
    before = children_cpu()
    begin = time.monotonic()
    confine = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, preexec_fn=confine)
    wall = time.monotonic() - begin
    reap_descendants()
    return wall, children_cpu() - before, done


def proc_tree_cpu(pid: int) -> float:
    """CPU seconds of a live process and its descendants (their reaped children included)."""
    total = 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += sum(int(x) for x in fields[11:15]) / TICK  # utime stime cutime cstime
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                total += sum(proc_tree_cpu(int(c)) for c in f.read().split())
    except (OSError, ValueError):
        pass
    return total


def fmt(values) -> str:
    values = list(values)
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"median {statistics.median(values):.2f} (min {min(values):.2f}, max {max(values):.2f})"


# -- submissions -------------------------------------------------------------------------

def submitted_notebook(section: str, kind: str = "solved", bug_code: str = ""):
    """A notebook as a learner hands it in: 'solved' (the solutions), 'blank' (as released), or
    'solved' plus a cell redefining one function wrongly (`bug_code`, from tests/bank)."""
    import nbformat

    name = NOTEBOOKS[section]
    nb = nbformat.read(ROOT / "source_notebooks" / name / f"{name}.ipynb", as_version=4)
    for cell in nb.cells:
        cell.source = HIDDEN.sub("", cell.source)
        if kind == "blank":
            cell.source = SOLUTION.sub(r"\1# YOUR CODE HERE\n\1raise NotImplementedError()", cell.source)
    if bug_code:
        nb.cells.append(nbformat.v4.new_code_cell(bug_code))
    return nb


def write_full_submission(folder: Path) -> Path:
    import nbformat

    folder.mkdir(parents=True, exist_ok=True)
    for section in SECTIONS:
        nbformat.write(submitted_notebook(section), folder / f"{NOTEBOOKS[section]}.ipynb")
    return folder


def bank_bugs() -> dict:
    import importlib

    bugs = {}
    for section in SECTIONS:
        try:
            bugs[section] = importlib.import_module(f"tests.bank.{section}").BUGS
        except (ImportError, AttributeError):
            bugs[section] = []
    return bugs


def write_class(folder: Path, size: int, kind: str) -> Path:
    """`size` learners: solved, blank and one-bug notebooks in turn, over every section; with
    kind 'full' each learner is a folder of all eight notebooks."""
    import nbformat

    bugs = bank_bugs()
    folder.mkdir(parents=True, exist_ok=True)

    def variant(i: int, section: str):
        choice = i % 3
        if choice == 1:
            return submitted_notebook(section, "blank")
        if choice == 2 and bugs[section]:
            return submitted_notebook(section, bug_code=bugs[section][i % len(bugs[section])].code)
        return submitted_notebook(section)

    for i in range(size):
        if kind == "full":
            learner = folder / f"learner{i:03d}"
            learner.mkdir()
            for j, section in enumerate(SECTIONS):
                nbformat.write(variant(i + j, section), learner / f"{NOTEBOOKS[section]}.ipynb")
        else:
            section = SECTIONS[i % len(SECTIONS)]
            nbformat.write(variant(i // len(SECTIONS), section), folder / f"learner{i:03d}.ipynb")
    return folder


# -- (a) one full submission -------------------------------------------------------------

def tree_pss_mb(pid: int) -> float:
    """Summed PSS (MB) of a live process and its descendants: what they really hold of the
    machine's memory (shared pages counted once across them)."""
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/smaps_rollup") as f:
                total += sum(int(line.split()[1]) for line in f if line.startswith("Pss:")) / 1024
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as f:
                    stack += [int(c) for c in f.read().split()]
        except (OSError, ValueError):
            pass
    return total


def run_with_peak_pss(cmd) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall seconds, peak summed PSS in MB sampled every 50 ms, result)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:  # (a pipe could fill and stall it)
        begin = time.monotonic()
        process = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=err, text=True)
        peak = 0.0
        while process.poll() is None:
            peak = max(peak, tree_pss_mb(process.pid))
            time.sleep(0.05)
        wall = time.monotonic() - begin
        out.seek(0), err.seek(0)
        out, err = out.read(), err.read()
    reap_descendants()
    return wall, peak, subprocess.CompletedProcess(cmd, process.returncode, out, err)


def bench_workspace(repeat: int) -> None:
    """A learner's solved workspace (the graded notebooks and the ungraded ones) graded cold, against a
    bare `import torch`; targets: at most 1.8x its time, at most 768 MB of summed PSS (Gradescope's
    default container)."""
    import nbformat

    from course.learner.workspace import UNGRADED_NOTEBOOKS

    with tempfile.TemporaryDirectory(prefix="bench-workspace-") as tmp:
        workspace = write_full_submission(Path(tmp) / "workspace")
        for name in UNGRADED_NOTEBOOKS:
            nbformat.write(nbformat.read(ROOT / "source_notebooks" / name / f"{name}.ipynb", as_version=4),
                           workspace / f"{name}.ipynb")
        torch_walls = [run_measured([sys.executable, "-c", "import torch"])[0] for _ in range(repeat)]
        walls, peaks = [], []
        for _ in range(repeat):
            wall, peak, done = run_with_peak_pss([sys.executable, "-m", "course.grade", str(workspace), "--format", "json"])
            if done.returncode != 0:
                raise RuntimeError(f"course.grade failed:\n{done.stderr[-2000:]}")
            walls.append(wall)
            peaks.append(peak)
            report = json.loads(done.stdout)
            print(f"  workspace: {wall:6.2f} s wall, peak {peak:6.0f} MB summed PSS, score {report['score']:g}/"
                  f"{report['max_score']:g}   [{load()}]", flush=True)
    ratio = statistics.median(walls) / statistics.median(torch_walls)
    print(f"  bare import torch: {fmt(torch_walls)} s; workspace: {fmt(walls)} s, x{ratio:.2f} "
          f"(target 1.8: {'met' if ratio <= 1.8 else 'NOT met'}); peak PSS {max(peaks):.0f} MB "
          f"(target 768: {'met' if max(peaks) <= 768 else 'NOT met'})", flush=True)


def bench_cli(submission: Path, repeat: int) -> dict:
    walls, cpus, score = [], [], None
    for _ in range(repeat):
        wall, cpu, done = run_measured([sys.executable, "-m", "course.grade", str(submission), "--format", "json"])
        if done.returncode != 0:
            raise RuntimeError(f"course.grade failed:\n{done.stderr[-2000:]}")
        report = json.loads(done.stdout)
        score = (report["score"], report["max_score"])
        walls.append(wall)
        cpus.append(cpu)
        print(f"  python -m course.grade: {wall:6.2f} s wall, {cpu:6.2f} s CPU   [{load()}]", flush=True)
    return {"wall": walls, "cpu": cpus, "score": score}


def bench_warm_worker(submission: Path, repeat: int) -> dict:
    from course.grading.request import GradeRequest
    from course.platforms.batch_worker import GraderWorker
    from course.grading.submission import submission_files
    from course.sandbox.limits import Limits

    paths = submission_files(submission)
    worker = GraderWorker(Limits(), name="bench")
    begin = time.monotonic()
    worker._start()
    start_wall = time.monotonic() - begin
    print(f"  batch worker start-up (imports, fork server, warm-up): {start_wall:.2f} s wall", flush=True)
    walls, cpus, score = [], [], None
    try:
        for i in range(repeat + 1):  # the first one is a warm-up of the per-section code paths
            pid = worker._proc.pid
            cpu0 = proc_tree_cpu(pid)
            t0 = time.monotonic()
            reply = worker.grade(f"bench{i}", GradeRequest(tuple(map(str, paths)), limits=worker.limits), timeout=900)
            wall = time.monotonic() - t0
            time.sleep(0.5)  # let the fork server reap the learner processes
            cpu = proc_tree_cpu(pid) - cpu0
            score = (reply["report"]["score"], reply["report"]["max_score"])
            if i:
                walls.append(wall)
                cpus.append(cpu)
            print(f"  warm batch worker{' (first)' if not i else ''}: {wall:6.2f} s wall, {cpu:6.2f} s CPU   "
                  f"[{load()}]", flush=True)
    finally:
        worker.stop()
        reap_descendants()
    return {"wall": walls, "cpu": cpus, "score": score, "startup": start_wall}


def nbgrader_course(root: Path, submission: Path, env: dict) -> list[str]:
    """A course directory with every assignment generated and one learner's notebooks submitted."""
    shutil.copy(ROOT / "nbgrader_config.py", root)
    names = []
    for section in SECTIONS:
        name = NOTEBOOKS[section]
        shutil.copytree(ROOT / "source_notebooks" / name, root / "source_notebooks" / name)
        done = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", name, "--force"],
                              cwd=root, env=env, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"nbgrader generate_assignment {name}:\n{done.stderr[-2000:]}")
        target = root / "submitted" / "bench_student" / name
        target.mkdir(parents=True)
        shutil.copy(submission / f"{name}.ipynb", target)
        (target / "timestamp.txt").write_text("2026-11-22 10:00:00.000000 UTC")
        names.append(name)
    return names


def nbgrader_scores(root: Path) -> tuple[float, float]:
    from nbgrader.api import Gradebook

    score = max_auto = 0.0
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        for assignment in gradebook.assignments:
            submission = gradebook.find_submission(assignment.name, "bench_student")
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    if grade.auto_score is not None:
                        score += grade.auto_score
                        max_auto += grade.max_score
    return score, max_auto


def bench_nbgrader(submission: Path, repeat: int, keep: Path | None) -> dict:
    root = Path(tempfile.mkdtemp(prefix="bench-nbgrader-"))
    _interpreter_bin_on_path()  # nbgrader runs `alembic` from PATH: this Python's, venv activated or not
    env = dict(os.environ, NBGRADER_EXCHANGE=str(root / "exchange"))
    (root / "exchange").mkdir()
    try:
        names = nbgrader_course(root, submission, env)
        walls, cpus = [], []
        for _ in range(repeat):
            wall = cpu = 0.0
            for name in names:  # one autograde per assignment, as an instructor runs it
                w, c, done = run_measured([sys.executable, "-m", "nbgrader", "autograde", name, "--force"],
                                          cwd=root, env=env)
                if done.returncode:
                    raise RuntimeError(f"nbgrader autograde {name}:\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}")
                wall += w
                cpu += c
            walls.append(wall)
            cpus.append(cpu)
            print(f"  nbgrader autograde (8 assignments): {wall:6.2f} s wall, {cpu:6.2f} s CPU   [{load()}]",
                  flush=True)
        return {"wall": walls, "cpu": cpus, "score": nbgrader_scores(root)}
    finally:
        if keep:
            shutil.copytree(root, keep / "nbgrader-course", dirs_exist_ok=True)
        shutil.rmtree(root, ignore_errors=True)


def breakdown(submission: Path) -> None:
    """In this process: a warm grader, instrumented (run as a child of the benchmark)."""
    import course.grading.grader as grade
    from course.sandbox.fork_client import shared_fork_server
    from course.grading.submission import submission_files

    timings: dict = {"cells": {}, "suites": 0.0}
    original_start, original_run = grade.LoadedFile.start, grade.run_suites

    def start(self, names):
        t0 = time.monotonic()
        original_start(self, names)
        timings["cells"][self.submission.path.name] = time.monotonic() - t0

    def run_suites(*args, **kwargs):
        t0 = time.monotonic()
        try:
            return original_run(*args, **kwargs)
        finally:
            timings["suites"] += time.monotonic() - t0

    grade.warm_up()
    fork_server = shared_fork_server()._proc.pid
    paths = submission_files(submission)
    grade.grade_files(paths)  # warm
    grade.LoadedFile.start, grade.run_suites = start, run_suites
    rows = []
    for parallel in (1, None):
        timings["cells"].clear()
        timings["suites"] = 0.0
        self0, learners0 = time.process_time(), proc_tree_cpu(fork_server)
        t0 = time.monotonic()
        grade.grade_files(paths, parallel=parallel)
        wall = time.monotonic() - t0
        time.sleep(0.5)
        rows.append({"parallel": parallel or min(len(paths), os.cpu_count() or 1), "wall": wall,
                     "cells": dict(timings["cells"]), "suites": timings["suites"],
                     "grader_cpu": time.process_time() - self0, "learner_cpu": proc_tree_cpu(fork_server) - learners0})
    print(json.dumps(rows))


def bench_breakdown(submission: Path) -> None:
    done = subprocess.run([sys.executable, __file__, "--breakdown-of", str(submission)], cwd=ROOT,
                          capture_output=True, text=True)
    reap_descendants()
    if done.returncode:
        print(f"  (breakdown failed: {done.stderr[-1500:]})")
        return
    for row in json.loads(done.stdout.strip().splitlines()[-1]):
        cells = row["cells"]
        print(f"  learner processes run at once: {row['parallel']}: {row['wall']:.2f} s wall   [{load()}]")
        print("    notebook cells that run (demonstrations left out), per file (wall, in parallel when >1): "
              + ", ".join(f"{k.split('_')[0]} {v:.2f}" for k, v in cells.items()))
        print(f"    cells: {sum(cells.values()):.2f} s summed over files; hidden suites (one pytest session, once every "
              f"file is loaded): {row['suites']:.2f} s")
        print(f"    CPU: grader process {row['grader_cpu']:.2f} s, learner processes {row['learner_cpu']:.2f} s")


# -- (b) a class ---------------------------------------------------------------------------

def bench_class(size: int, kind: str, runs, keep: Path | None) -> dict:
    """`runs`: (workers, cores, pinned) triples; cores None is the whole machine, else the batch is
    confined to that many cores; pinned False passes --no-pin. Results by triple."""
    root = Path(tempfile.mkdtemp(prefix="bench-class-"))
    try:
        write_class(root / "class", size, kind)
        results = {}
        sheets = {}
        for workers, cores, pinned in runs:
            out = root / f"out-{workers}-{cores}-{pinned}"
            cpus = sorted(os.sched_getaffinity(0))[:cores] if cores else None
            wall, cpu, done = run_measured([sys.executable, "-m", "course.batch", str(root / "class"), "--out",
                                            str(out), "--workers", str(workers), "--no-progress",
                                            "--summary", "json"] + ([] if pinned else ["--no-pin"]), cpus=cpus)
            if done.returncode:
                raise RuntimeError(f"course.batch failed:\n{done.stderr[-2000:]}")
            summary = json.loads(done.stdout)
            grading = summary["seconds"] - (summary.get("worker_start_seconds") or 0.0)
            results[workers, cores, pinned] = {"wall": wall, "cpu": cpu, "grading": grading,
                                               "counts": summary["counts"]}
            sheets[workers, cores, pinned] = (out / "grades.csv").read_text()
            where = f" on {cores} core{'s' * (cores > 1)}" if cores else ""
            where += ", one core each" if summary.get("worker_cores") else ", not pinned" if not pinned else ""
            print(f"  {workers} worker(s){where}: {wall:7.2f} s wall in all ({grading:.2f} s after start-up), "
                  f"{wall / size:.2f} s per submission, {size / wall * 60:.1f} submissions/min, "
                  f"{cpu:.1f} s CPU ({cpu / size:.2f} s per submission), cores obtained {cpu / wall:.2f}   "
                  f"[{load()}]  {summary['counts']}", flush=True)
        if len(set(sheets.values())) > 1:
            print("  WARNING: the grade sheets differ between runs")
        else:
            print("  grade sheets identical in every run")
        return results
    finally:
        if keep:
            shutil.copytree(root, keep / "class", dirs_exist_ok=True)
        shutil.rmtree(root, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of course.grade and of the warm worker")
    parser.add_argument("--nbgrader-repeat", type=int, default=1)
    parser.add_argument("--skip-nbgrader", action="store_true")
    parser.add_argument("--skip-class", action="store_true")
    parser.add_argument("--skip-full", action="store_true", help="skip (a)")
    parser.add_argument("--workspace", action="store_true",
                        help="only: a solved workspace (with the lab notebook) graded cold, time and memory")
    parser.add_argument("--class-size", type=int, default=100)
    parser.add_argument("--class-kind", choices=("single", "full"), default="single",
                        help="single: each learner hands in one notebook (sections in turn); full: all eight")
    parser.add_argument("--workers", default="1,2", help="worker counts for (b), comma-separated")
    parser.add_argument("--unpinned-too", action="store_true",
                        help="(b): also run each worker count above 1 with --no-pin (no worker confined to a core)")
    parser.add_argument("--keep", type=Path, help="copy the generated course/class folders here")
    parser.add_argument("--breakdown-of", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.breakdown_of:
        breakdown(args.breakdown_of)
        return 0
    become_subreaper()
    if args.workspace:
        bench_workspace(args.repeat)
        return 0
    print(f"{os.cpu_count()} cores, {load()}; figures are wall-clock seconds and CPU seconds of the whole "
          f"process tree", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-submission-") as tmp:
        submission = write_full_submission(Path(tmp) / "learner")
        if not args.skip_full:
            print("\n(a) one full-course submission: 8 solved notebooks, hidden-test regions removed", flush=True)
            cli = bench_cli(submission, args.repeat)
            warm = bench_warm_worker(submission, args.repeat)
            print(f"  score: course.grade {cli['score'][0]:g}/{cli['score'][1]:g}, "
                  f"warm worker {warm['score'][0]:g}/{warm['score'][1]:g}", flush=True)
            bench_breakdown(submission)
            nb = None
            if not args.skip_nbgrader:
                nb = bench_nbgrader(submission, args.nbgrader_repeat, args.keep)
                print(f"  score: nbgrader {nb['score'][0]:g}/{nb['score'][1]:g} autograded points", flush=True)
            print("\n  summary, seconds per full submission:")
            print(f"    python -m course.grade (cold process)   wall {fmt(cli['wall'])}   CPU {fmt(cli['cpu'])}")
            print(f"    warm batch worker                       wall {fmt(warm['wall'])}   CPU {fmt(warm['cpu'])}")
            rows = (("course.grade", cli), ("warm worker", warm))
            if nb:
                print(f"    nbgrader autograde                      wall {fmt(nb['wall'])}   CPU {fmt(nb['cpu'])}")
                for label, ours in rows:
                    print(f"    nbgrader / {label:<13}  wall x{statistics.median(nb['wall']) / statistics.median(ours['wall']):.1f}"
                          f"   CPU x{statistics.median(nb['cpu']) / statistics.median(ours['cpu']):.1f}")
            for label, ours, goal in (("cold course.grade", cli, 3.5), ("warm worker", warm, 2.5)):  # issue #13
                median = statistics.median(ours["wall"])
                print(f"    target {label} under {goal:g} s: {'met' if median < goal else 'NOT met'} ({median:.2f} s)")
            if nb:
                best = min(statistics.median(ours["wall"]) for _, ours in rows)
                print(f"    target 40x faster than nbgrader: x{statistics.median(nb['wall']) / best:.1f} (best of the two)")
    if not args.skip_class:
        workers = [int(w) for w in args.workers.split(",") if w.strip()]
        print(f"\n(b) a class of {args.class_size} submissions ({args.class_kind}: solved, blank and one-bug "
              f"notebooks in turn) through python -m course.batch", flush=True)
        runs = [(1, 1, True)] if 1 in workers and len(os.sched_getaffinity(0)) > 1 else []
        runs += [(w, None, True) for w in workers]
        runs += [(w, None, False) for w in workers if args.unpinned_too and w > 1]
        results = bench_class(args.class_size, args.class_kind, runs, args.keep)
        print_scaling(results)
    return 0


def print_scaling(results: dict) -> None:
    """Throughput against cores (1 worker confined to one core -> N workers on N cores: the issue's
    "linear in cores") and against workers on the whole machine (one worker already uses more than
    one core: its suites run while its learner process still runs cells)."""
    cores = len(os.sched_getaffinity(0))
    pairs = []
    for base, label in (((1, 1, True), "1 worker on 1 core -> {} workers on {} cores"),
                        ((1, None, True), "1 -> {} workers on the whole machine ({} cores)")):
        if base in results:
            pairs += [(label.format(w, cores) + ("" if pinned else ", not pinned"), results[base], r, min(w, cores))
                      for (w, c, pinned), r in results.items() if c is None and w > 1]
    for label, base, r, ideal in pairs:
        print(f"  scaling {label}: throughput x{base['grading'] / r['grading']:.2f} after start-up, "
              f"x{base['wall'] / r['wall']:.2f} overall (ideal x{ideal}); cores obtained "
              f"{base['cpu'] / base['wall']:.2f} -> {r['cpu'] / r['wall']:.2f} "
              f"(on a shared machine the other tenants decide how many cores a batch gets)")


if __name__ == "__main__":
    sys.exit(main())
