"""How fast does a grade cell answer? (course.nbgrader_bridge.grade_exercise, the nbgrader Validate
button and `nbgrader autograde` path.) Prints figures; asserts nothing.

    python benchmarks/bench_bridge.py [--section rope] [--no-keep]

A kernel in miniature (IPython's InteractiveShell, in a process of its own per notebook) runs a
solved source notebook top to bottom, hidden grade calls included, then, as a learner fixing a
function would, runs a grade cell again (its grader catches up with the cells run since the last
grade cell), then the first solution cell again and the grade cell. Each grade_exercise call is
timed: the first of the session (starts the kernel's grader: imports, fork server), the later
ones, the catching-up one and the re-grade after the fix. `--no-keep` grades as before issue #13 (a fresh learner
process replaying every executed cell for each call) for comparison.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def kernel(section: str, keep: bool) -> None:
    """In a fresh process: run the notebook's cells as a kernel would; print one JSON line of timings."""
    from IPython.core.interactiveshell import InteractiveShell

    from course.exercises import NOTEBOOKS
    import course.nbgrader_bridge
    import course.platforms.nbgrader_bridge as bridge

    if not keep:
        def grade(self, path, exercise_id):
            self._proc.stdin.write(json.dumps({"path": str(path), "only": [exercise_id]}) + "\n")
            self._proc.stdin.flush()
            return json.loads(self._proc.stdout.readline())["report"]

        bridge._Grader.grade = grade
    calls = []
    original = bridge.grade_exercise

    def timed(exercise_id):
        begin = time.monotonic()
        try:
            return original(exercise_id)
        finally:
            calls.append((exercise_id, time.monotonic() - begin))

    bridge.grade_exercise = course.nbgrader_bridge.grade_exercise = timed
    name = NOTEBOOKS[section]
    cells = [("".join(c["source"]), c.get("metadata", {}).get("tags", []))
             for c in json.loads((ROOT / "source_notebooks" / name / f"{name}.ipynb").read_text())["cells"]
             if c["cell_type"] == "code"]
    work = Path(tempfile.mkdtemp(prefix="bench-bridge-"))
    os.chdir(work)
    shell = InteractiveShell.instance()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            for source, _ in cells:
                shell.run_cell(source, store_history=True)
            notebook_calls = len(calls)
            fixed = next((s for s, tags in cells if any(t.startswith("solution:") for t in tags)), None)
            grade = next((s for s, _ in cells if "grade_exercise" in s and fixed is not None), None)
            if fixed and grade:
                shell.run_cell(grade, store_history=True)  # catches up with the cells after the last grade cell
                shell.run_cell(fixed, store_history=True)
                shell.run_cell(grade, store_history=True)
    finally:
        os.chdir(ROOT)
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"notebook": [t for _, t in calls[:notebook_calls]],
                      "regrade": [t for _, t in calls[notebook_calls:]]}))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--section", action="append", help="notebook section(s) (default: all)")
    parser.add_argument("--no-keep", action="store_true", help="a fresh learner process for every call (as before)")
    parser.add_argument("--kernel-of", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.kernel_of:
        kernel(args.kernel_of, not args.no_keep)
        return 0
    from course.exercises import SECTIONS

    later_all, regrades = [], []
    print(f"grade_exercise calls, seconds of wall clock ({'fresh process each call' if args.no_keep else 'kept learner process'})")
    for section in args.section or SECTIONS:
        done = subprocess.run([sys.executable, __file__, "--kernel-of", section] + (["--no-keep"] if args.no_keep else []),
                              capture_output=True, text=True, cwd=ROOT)
        if done.returncode:
            print(f"  {section}: failed\n{done.stderr[-1500:]}")
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        first, later = row["notebook"][0], row["notebook"][1:]
        later_all += later
        regrades += row["regrade"]
        print(f"  {section:<12} first {first:5.2f}   later ({len(later)}) "
              f"{'median %.2f max %.2f' % (statistics.median(later), max(later)) if later else '-':<22}"
              f"  catch-up, fix + re-grade {' '.join('%.2f' % r for r in row['regrade']) or '-'}   "
              f"[load {os.getloadavg()[0]:.1f}]", flush=True)
    if later_all:
        print(f"  all sections: later calls median {statistics.median(later_all):.2f} s, max {max(later_all):.2f} s; "
              f"fix + re-grade median {statistics.median(regrades[1::2]) if regrades else float('nan'):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
