"""Gradescope's autograder: ``python -m course.gradescope build --out autograder.zip``.

Gradescope builds an image from the zip: it unpacks the zip into ``/autograder/source`` and runs
``setup.sh`` there once, as root. For each submission it puts the learner's files in
``/autograder/submission``, runs ``/autograder/run_autograder`` (a copy of the zip's) from
``/autograder``, and shows ``/autograder/results/results.json`` (Gradescope's "Autograder
Specifications"; ``gradescope_results.schema.json`` beside this file is that format as a JSON
Schema). The zip holds:

- ``setup.sh``: a virtual environment ``/autograder/venv`` with the pinned packages of
  pyproject.toml (torch first, its CPU build); the hidden suites made unreadable to other users.
- ``run_autograder``: ``python -m course.gradescope run`` under a hard time limit; if that
  fails or runs out of time, it writes a results.json with score 0 and the reason itself.
- ``course/`` (the grader), ``grader_tests/`` (the hidden suites of the chosen sections only),
  ``requirements.txt`` and ``gradescope_config.json`` (sections, visibility, limits). Never
  ``solutions/`` nor ``source_notebooks/``.

``run`` grades the whole submission folder with course.grade.grade_files (the learner's code in
the sandbox, the hidden suites here), then runs each section's visible checks (what ``check()``
shows in the notebook) in the learner's process. results.json maps them as follows:

- one test per exercise of the assignment's sections, also those the learner did not submit:
  name ``<exercise id> (<notebook section to reread>)``, number ``<notebook>.<exercise>``
  (``6.2``: the second exercise of notebook 06), the exercise's points and the grader's feedback;
  visibility ``--hidden-visibility`` (default after_published: shown once grades are published);
- one test per section, ``<section>: visible checks``, number ``<notebook>.0``, always visible,
  no points, passed or failed: the checks the learner can run in the notebook, so they reveal
  nothing of the hidden suites;
- the top-level ``output`` (always visible, no scores): which files were graded for which
  section, what the assignment expects and was not found, cells that raised, why grading
  stopped; ``score`` is the sum of the exercise tests; stdout (the grader's log) is hidden.

Environment: AUTOGRADER_ROOT replaces ``/autograder`` (tests run the autograder in a temporary
folder), PYTHON is the interpreter setup.sh builds the environment from, TORCH_INDEX_URL where
setup.sh takes torch from when pip has no settings of its own (default: the CPU builds).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import sys
import threading
import time
import traceback
import zipfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from course.exercises import EXERCISES, NOTEBOOKS, SECTIONS, graded_names, section_exercises
from course.files import write_atomic
from course.locations import REPO, suites_dir
from course.sandbox.limits import Limits, add_limit_options, limits_from

SCHEMA = Path(__file__).with_name("gradescope_results.schema.json")
CONFIG_NAME = "gradescope_config.json"
ROOT_ENV = "AUTOGRADER_ROOT"
VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")
TIME_LIMIT = 480.0      # seconds for a whole run: below Gradescope's default timeout of 10 minutes
NEVER_SHIPPED = ("solutions", "source_notebooks")
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


# -- results.json (shared with course.batch) ----------------------------------------------

def report_lines(report: dict) -> list[str]:
    """What a grader report says about the whole submission: why it could not be graded, the
    cells that raised, which file graded which section (a batch record has them as file_sections)."""
    lines = []
    if report.get("error"):
        lines.append(f"Could not grade this submission: {report['error']}")
    lines += [f"note: {n}" for n in report.get("notes", [])]
    entries = report.get("file_sections") or [f for f in report.get("files", []) if isinstance(f, dict)]
    for entry in entries:
        if entry["sections"]:
            lines.append(f"{entry['file']} graded for {', '.join(entry['sections'])}")
    return lines


def exercise_test(exercise: dict, number: str, *, name: str | None = None, visibility: str = "visible") -> dict:
    """One Gradescope test from one exercise of a grader report."""
    return {"name": name or exercise["id"], "number": number, "score": exercise["score"],
            "max_score": exercise["max_score"],
            "status": "passed" if exercise["score"] >= exercise["max_score"] else "failed",
            "output": exercise["feedback"], "visibility": visibility}


def results_document(score: float, seconds: float, output: str, tests: list[dict], **more) -> dict:
    """A results.json document (Gradescope's output format)."""
    return {"score": float(score), "execution_time": max(0, round(seconds)), "output": output,
            "visibility": "visible", "stdout_visibility": "hidden", "tests": tests, **more}


def schema_errors(document: dict) -> list[str]:
    """Where `document` breaks gradescope_results.schema.json (empty: valid)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in validator.iter_errors(document)]


# -- what an assignment grades --------------------------------------------------------------

@dataclass
class Config:
    """What one Gradescope assignment grades and how (gradescope_config.json in the zip)."""
    sections: list[str] = field(default_factory=lambda: list(SECTIONS))
    hidden_visibility: str = "after_published"
    visible_checks: bool = True
    time_limit: float = TIME_LIMIT
    limits: dict = field(default_factory=lambda: asdict(Limits()))
    course_version: str = ""

    def __post_init__(self):
        unknown = [s for s in self.sections if s not in SECTIONS]
        if unknown or not self.sections:
            raise ValueError(f"unknown section(s) {', '.join(unknown) or '(none given)'}; "
                             f"sections are {', '.join(SECTIONS)}")
        self.sections = [s for s in SECTIONS if s in self.sections]
        if self.hidden_visibility not in VISIBILITIES:
            raise ValueError(f"visibility must be one of {', '.join(VISIBILITIES)}, not {self.hidden_visibility!r}")
        self.time_limit = float(self.time_limit)
        if not self.time_limit > 0:
            raise ValueError(f"the time limit must be positive, not {self.time_limit}")
        self.limits = {**asdict(Limits()), **self.limits}

    @property
    def exercise_ids(self) -> list[str]:
        return [e.id for s in self.sections for e in section_exercises(s)]

    @property
    def points(self) -> float:
        return float(sum(EXERCISES[i].points for i in self.exercise_ids))

    def grading_limits(self) -> Limits:
        known = {f.name for f in fields(Limits)}
        return Limits(**{k: v for k, v in self.limits.items() if k in known})

    @property
    def grace(self) -> int:
        """Seconds run_autograder waits past the time limit before it stops the grader itself."""
        return int(min(30, max(5, self.time_limit // 10)))

    @classmethod
    def load(cls, source: Path) -> "Config":
        data = json.loads((source / CONFIG_NAME).read_text(encoding="utf-8"))
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def test_name(exercise_id: str) -> str:
    """``rope.apply_rope (Rotating queries and keys)``: the id and the heading of the notebook
    section that teaches it (without the heading's number, which would clash with the test's)."""
    return f"{exercise_id} ({re.sub(r'^[0-9.]+[ ]+', '', EXERCISES[exercise_id].where)})"


def test_number(exercise_id: str) -> str:
    section = EXERCISES[exercise_id].section
    position = [e.id for e in section_exercises(section)].index(exercise_id) + 1
    return f"{SECTIONS.index(section) + 1}.{position}"


def _section_label(section: str) -> str:
    return f"{section} ({NOTEBOOKS[section]}.ipynb)"


# -- building the zip -----------------------------------------------------------------------

SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (the zip is unpacked
# in /autograder/source). It makes /autograder/venv with the course's pinned packages.
# Written by `python -m course.gradescope build`. AUTOGRADER_ROOT (default /autograder) and
# PYTHON (default python3) let a test run it elsewhere; TORCH_INDEX_URL replaces the index of
# CPU builds torch comes from when pip has no settings of its own.
set -euo pipefail
source_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="${AUTOGRADER_ROOT:-/autograder}"
python="${PYTHON:-python3}"
venv="$root/venv"

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "setup.sh: the course needs Python 3.10 or newer, $python is $("$python" -V 2>&1);" \
       "choose a newer base image (Ubuntu 22.04 or later) in Gradescope's autograder settings" >&2
  exit 1
fi
if ! "$python" -m venv "$venv"; then  # Debian and Ubuntu ship venv as a package of its own
  version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y "python$version-venv" \
    || DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv
  rm -rf "$venv"
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install --no-input --progress-bar off)
"${pip[@]}" --upgrade pip || echo "setup.sh: pip not upgraded; going on with $("$venv/bin/python" -m pip --version)"
# torch first, pinned, CPU build (no CUDA download): from the index of CPU builds, unless this
# machine's pip settings say where packages come from (a mirror, a folder of wheels).
torch_index=(--index-url "${TORCH_INDEX_URL:-@TORCH_INDEX@}")
if [ -n "${PIP_INDEX_URL:-}${PIP_EXTRA_INDEX_URL:-}${PIP_FIND_LINKS:-}${PIP_NO_INDEX:-}" ] \
   || "$venv/bin/python" -m pip config list 2>/dev/null | grep -Eq '(index-url|find-links|no-index)='; then
  torch_index=()
fi
"${pip[@]}" ${torch_index[@]+"${torch_index[@]}"} "@TORCH@"
"${pip[@]}" -r "$source_dir/requirements.txt"
# Learners' processes run under user ids of their own: they must not read the hidden suites.
chmod -R go= "$source_dir/grader_tests"
chmod 755 "$source_dir/run_autograder"
cd "$source_dir"
"$venv/bin/python" -m compileall -q course grader_tests || true  # once here, not in every run
"$venv/bin/python" -c "import torch, course.grade; print('setup.sh: grader ready, torch', torch.__version__)"
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this for every submission, as root, from /autograder: grade what lies in
# /autograder/submission and write /autograder/results/results.json. Whatever happens (a crash,
# the time limit), a valid results.json is written. Written by `python -m course.gradescope build`.
root="${AUTOGRADER_ROOT:-/autograder}"
results="$root/results/results.json"
limit=@OUTER_LIMIT@  # seconds: the grader stops itself after @TIME_LIMIT@; Gradescope's own timeout must be longer
mkdir -p "$root/results"
rm -f "$results"
if [ -x "$root/venv/bin/python" ]; then python="$root/venv/bin/python"; else python="$(command -v python3 || echo python3)"; fi
status=0
if cd "$root/source"; then
  if command -v timeout >/dev/null 2>&1; then
    timeout --kill-after=10 "$limit" "$python" -m course.gradescope run --root "$root" || status=$?
  else
    "$python" -m course.gradescope run --root "$root" || status=$?
  fi
else
  status=1
fi
if [ "$status" -ne 0 ] || [ ! -s "$results" ]; then
  case "$status" in
    124|137) why="the grader ran out of time ($limit s)" ;;
    *) why="the grader stopped with exit status $status" ;;
  esac
  printf '{"score": 0.0, "execution_time": %d, "output": "The autograder could not grade this submission: %s. Nothing was graded: submit again, or ask your instructor to look at the autograder output.", "output_format": "text", "visibility": "visible", "stdout_visibility": "hidden", "tests": []}\n' \
    "$SECONDS" "$why" > "$results"
  echo "run_autograder: $why; wrote a results.json with score 0"
fi
exit 0
"""


def pinned_requirements(pyproject: Path | None = None) -> list[str]:
    """The runtime dependencies of pyproject.toml ([project] dependencies, not the extras)."""
    text = (pyproject or REPO / "pyproject.toml").read_text(encoding="utf-8")
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the list is plain enough to read line by line
        block = re.search(r"^dependencies\s*=\s*\[(.*?)^\]", text, re.S | re.M)
        return [m for line in block.group(1).splitlines() for m in re.findall(r'"([^"]+)"', line.split("#")[0])]
    return list(tomllib.loads(text)["project"]["dependencies"])


def _course_version() -> str:
    match = re.search(r'^version\s*=\s*"([^"]+)"', (REPO / "pyproject.toml").read_text(encoding="utf-8"), re.M)
    return match.group(1) if match else ""


def _package_files(folder: Path) -> list[Path]:
    """The files of a source folder, without caches, compiled files and hidden files."""
    found = []
    for path in sorted(folder.rglob("*")):
        parts = path.relative_to(folder).parts
        if any(p.startswith(".") or p == "__pycache__" for p in parts) or path.suffix in (".pyc", ".pyo"):
            continue
        if path.is_file():
            found.append(path)
    return found


def zip_contents(config: Config) -> dict[str, tuple[bytes, int]]:
    """Name in the zip -> (content, file mode)."""

    requirements = pinned_requirements()
    torch = next((r for r in requirements if re.match(r"torch\s*==", r)), None)
    if torch is None:
        raise ValueError("pyproject.toml pins no torch version (torch==...)")
    outer = int(math.ceil(config.time_limit)) + config.grace
    files: dict[str, tuple[bytes, int]] = {
        "setup.sh": (SETUP_SH.replace("@TORCH@", torch).replace("@TORCH_INDEX@", TORCH_CPU_INDEX).encode(), 0o755),
        "run_autograder": (RUN_AUTOGRADER.replace("@OUTER_LIMIT@", str(outer))
                           .replace("@TIME_LIMIT@", f"{config.time_limit:g} s").encode(), 0o755),
        "requirements.txt": (("# pyproject.toml's runtime dependencies (setup.sh installs torch first)\n"
                              + "\n".join(requirements) + "\n").encode(), 0o644),
        CONFIG_NAME: (json.dumps(asdict(config), indent=1).encode() + b"\n", 0o644),
    }
    for path in _package_files(REPO / "course"):
        files[path.relative_to(REPO).as_posix()] = (path.read_bytes(), 0o644)
    suites = suites_dir()
    wanted = {f"test_{s}.py" for s in config.sections}
    for path in _package_files(suites):
        relative = path.relative_to(suites)
        if relative.name.startswith("test_") and relative.name not in wanted and len(relative.parts) == 1:
            continue  # another section's suite: not part of this assignment
        files[f"grader_tests/{relative.as_posix()}"] = (path.read_bytes(), 0o644)
    missing = [name for name in sorted(wanted) if f"grader_tests/{name}" not in files]
    if missing:
        raise FileNotFoundError(f"hidden suites missing in {suites}: {', '.join(missing)}")
    leaked = [name for name in files if name.split("/", 1)[0] in NEVER_SHIPPED]
    assert not leaked, f"never shipped to Gradescope: {leaked}"
    return files


def build(out, config: Config) -> dict:
    """Write the autograder zip to `out` (the same inputs give the same bytes); returns a summary."""
    files = zip_contents(config)
    out = Path(out)
    buffer = _zip_bytes(files)
    write_atomic(out, buffer)
    return {"out": str(out), "files": len(files), "bytes": len(buffer), "sections": config.sections,
            "exercises": len(config.exercise_ids), "points": config.points,
            "hidden_visibility": config.hidden_visibility, "time_limit": config.time_limit,
            "outer_limit": int(math.ceil(config.time_limit)) + config.grace,
            "sha256": hashlib.sha256(buffer).hexdigest()}


def _zip_bytes(files: dict[str, tuple[bytes, int]]) -> bytes:
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            data, mode = files[name]
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so that unzip keeps the modes
            archive.writestr(info, data)
    return buffer.getvalue()


# -- running on Gradescope ------------------------------------------------------------------

VISIBLE_HELPER = "__course_gradescope_visible_checks"
VISIBLE_SOURCE = f'''
def {VISIBLE_HELPER}(target):
    from course.learner.selfcheck import run_checks
    return [[o.title, bool(o.passed), str(o.message)[:1500]] for o in run_checks(target, globals())]
'''
VISIBLE_CELL_SECONDS = 10.0  # the visible checks run the learner's cells a second time: shorter limits


def available_cpus() -> int:
    """Cores this container may use (Gradescope gives half a core by default; cpu_count shows the host's)."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            count = min(count, int(quota) / int(period))
    except (OSError, ValueError):
        try:
            quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
            period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
            if quota > 0:
                count = min(count, quota / period)
        except (OSError, ValueError):
            pass
    return max(1, int(count))


class Run:
    """One run of the autograder: what is known so far, written once as results.json (by the
    grading thread when it finishes, or by the watchdog when the time limit comes first)."""

    def __init__(self, root: Path, config: Config, problem: str = ""):
        self.root, self.config, self.problem = root, config, problem
        self.begin = time.monotonic()
        self.deadline = self.begin + config.time_limit
        self.out = root / "results" / "results.json"
        self.files: list[str] = []          # the learner's files, relative to the submission folder
        self.others: list[str] = []         # other files they uploaded
        self.report: dict | None = None
        self.visible: dict[str, dict] = {}  # section -> {"file", "present", "checks": [[exercise, title, passed, message]]}
        self.present: set[str] = set()      # sections whose names the submission defines
        self.visible_problem: dict[str, str] = {}  # section -> why its visible checks did not run
        self.sandboxes: list = []           # open sandboxes of the visible checks (closed by the watchdog)
        self._lock = threading.Lock()
        self._written = False

    # -- the document --------------------------------------------------------------
    def results(self, stopped: str = "", failure: str = "") -> dict:
        config = self.config
        by_id = {e["id"]: e for e in (self.report or {}).get("exercises", [])}
        lines = [self.problem] if self.problem else []
        if failure:
            lines.append(f"The autograder failed while grading ({failure}). This is a problem of the grader; "
                         "your instructor can see the details.")
        if stopped:
            lines.append(stopped)
        if self.report is None and not self.files and not failure and not stopped:
            found = f" (found: {', '.join(self.others[:10])})" if self.others else ""
            lines.append("No notebook (.ipynb) or Python module (.py) was found in your submission"
                         f"{found}. Upload the notebooks themselves, e.g. {NOTEBOOKS[config.sections[0]]}.ipynb.")
        elif self.files:
            others = f" (other files, not graded: {', '.join(self.others[:10])})" if self.others else ""
            lines.append(f"Submitted: {', '.join(self.files)}{others}.")
        if self.report is not None:
            lines += report_lines(self.report)
            missing = [s for s in config.sections if s not in self.present]
            if missing and not self.report.get("error"):
                lines.append("Not found in your submission: " + "; ".join(
                    f"{_section_label(s)}, which defines {', '.join(e.name for e in section_exercises(s))}"
                    for s in missing) + ".")
        if config.hidden_visibility != "visible":
            when = {"hidden": "are not shown", "after_due_date": "are shown after the due date",
                    "after_published": "are shown when the grades are published"}[config.hidden_visibility]
            lines.append(f"The graded tests (one per exercise, {config.points:g} points) {when}"
                         + ("; the visible checks are those check() runs in your notebooks." if config.visible_checks
                            else "."))
        if stopped:
            why = f"the autograder's time limit ({config.time_limit:g} s) came first"
        elif failure:
            why = "the autograder failed"
        elif self.report is not None:
            why = self.report.get("error") or "the grader did not report it"
        elif self.files:
            why = "grading did not finish"
        else:
            why = "your submission has no notebook (.ipynb) or Python module (.py)"
        tests = []
        for section in config.sections:
            if config.visible_checks:
                tests.append(self._visible_test(section, why if self.report is None or self.report.get("error")
                                                else self.visible_problem.get(section, "no time was left for them")))
            for exercise in section_exercises(section):
                entry = by_id.get(exercise.id) or {"id": exercise.id, "score": 0.0, "max_score": float(exercise.points),
                                                   "feedback": f"Not graded: {why}."}
                tests.append(exercise_test(entry, test_number(exercise.id), name=test_name(exercise.id),
                                           visibility=config.hidden_visibility))
        score = round(sum(t["score"] for t in tests if "score" in t), 2)
        extra = {"course_version": config.course_version, "sections": config.sections, "files": self.files,
                 "stopped": stopped or failure or None}
        return results_document(score, time.monotonic() - self.begin, "\n".join(lines), tests,
                                output_format="text", test_output_format="text", test_name_format="text",
                                extra_data=extra)

    def _visible_test(self, section: str, not_run: str) -> dict:
        number = f"{SECTIONS.index(section) + 1}.0"
        name = f"{section}: visible checks (check(\"{section}\") in {NOTEBOOKS[section]}.ipynb)"
        found = self.visible.get(section)
        if found is None:
            status, output = "failed", f"Not run: {not_run}."
        elif not found["present"]:
            status = "failed"
            output = (f"Your submission defines none of {', '.join(e.name for e in section_exercises(section))}: "
                      f"upload {NOTEBOOKS[section]}.ipynb (or a module defining them).")
        else:
            rows, failed = [], 0
            for exercise_id, title, passed, message in found["checks"]:
                name_ = exercise_id.split(".", 1)[1]
                rows.append(f"{'pass' if passed else 'FAIL'}  {name_}: {title}")
                if not passed:
                    failed += 1
                    rows += [f"      {line}" for line in message.splitlines()]
                    rows.append(f"      see {NOTEBOOKS[section]}, section {EXERCISES[exercise_id].where}")
            total = len(found["checks"])
            status = "passed" if total and not failed else "failed"
            rows.append(f"{total - failed} of {total} checks pass (run on {found['file']}).")
            output = "\n".join(rows)
        return {"name": name, "number": number, "status": status, "output": output, "visibility": "visible"}

    # -- writing ---------------------------------------------------------------------
    def write(self, document: dict) -> bool:
        """Write results.json unless it has been written; True if this call wrote it."""
        with self._lock:
            if self._written:
                return False
            try:
                problems = schema_errors(document)
            except Exception as err:  # noqa: BLE001 - no jsonschema, no schema: write it unchecked
                problems = []
                print(f"results.json not checked against the schema: {type(err).__name__}: {err}")
            if problems:
                print("results.json breaks Gradescope's format (a bug of the grader):", *problems, sep="\n  ")
                document = results_document(document.get("score", 0.0) if isinstance(document.get("score"), (int, float))
                                            else 0.0, time.monotonic() - self.begin,
                                            "The autograder produced malformed results; only the score is kept.", [],
                                            output_format="text")
            write_atomic(self.out, json.dumps(document, indent=1) + "\n")
            self._written = True
            return True

    def on_time_limit(self) -> None:
        """The watchdog: write what is known, stop every learner process, leave."""
        stopped = (f"Grading stopped after {self.config.time_limit:g} s, the autograder's time limit: "
                   + ("the visible checks did not finish." if self.report is not None
                      else "exercises not graded by then score 0. Look for code that runs for a long time "
                           "(a loop that never ends, a large experiment) in your notebooks."))
        if self.write(self.results(stopped=stopped)):
            print(f"time limit ({self.config.time_limit:g} s) reached: results written, stopping")
            sys.stdout.flush()
            _close_everything(self.sandboxes)
            os._exit(0)


def _close_everything(sandboxes) -> None:
    try:
        from course.grading.grader import close_all_sandboxes

        close_all_sandboxes()
    except Exception:  # noqa: BLE001 - best effort on the way out
        pass
    for sandbox in list(sandboxes):
        try:
            sandbox.close()
        except Exception:  # noqa: BLE001
            pass


def _protect(root: Path) -> None:
    """As root (Gradescope), learners run under user ids of their own: keep them out of the hidden
    suites and the results folder (Landlock, where the kernel has it, keeps them out anyway)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return
    suites = root / "source" / "grader_tests"
    for path in [suites, *suites.rglob("*")]:
        try:
            path.chmod(path.stat().st_mode & 0o700)
        except OSError:
            pass
    try:
        (root / "results").chmod(0o755)
    except OSError:
        pass


def _visible_checks(run: Run, submission: Path, limits: Limits) -> None:
    """Each section's visible checks, run in a learner process of the file that section was graded
    on (what check() does in the notebook): informative, never scored."""
    from course.grading.remote import SubmissionProxy
    from course.sandbox.learner_process import LearnerError, Sandbox, SubmissionCrashed, SubmissionTimeout
    from course.grading.submission import graded_files, read_submission, working_copy

    report = run.report or {}
    paths = graded_files([submission])
    owners: dict[Path, list[str]] = {}
    if len(paths) == 1:
        owners[paths[0]] = list(run.config.sections)
    else:
        by_name: dict[str, Path] = {}
        for path in paths:
            by_name.setdefault(path.name, path)
        for entry in report.get("files", []):
            path = by_name.get(entry.get("file"))
            sections = [s for s in entry.get("sections", []) if s in run.config.sections]
            if path is not None and sections:
                owners.setdefault(path, []).extend(sections)
    root, copies = working_copy([submission], limits.file_mb)
    names = graded_names()
    for path, sections in owners.items():
        left = run.deadline - time.monotonic() - 5.0
        if left < 5.0:
            return
        try:
            submitted = read_submission(path)
        except Exception:  # noqa: BLE001 - the grader said so already (a note)
            continue
        file_limits = Limits(**{**asdict(limits), "cell_seconds": min(limits.cell_seconds, VISIBLE_CELL_SECONDS),
                                "cell_seconds_after_hang": min(limits.cell_seconds_after_hang, 2.0),
                                "submission_seconds": min(limits.submission_seconds, left)})
        sandbox = Sandbox(submitted.cells, file_limits, files=copies, module=submitted.identity(root))
        run.sandboxes.append(sandbox)
        label = path.relative_to(submission).as_posix()
        try:
            sandbox.start()
            defined = sandbox.defined(names)
            proxy = SubmissionProxy(sandbox, defined)
            sandbox.set_exercise("gradescope: visible checks")
            helper = proxy.define(VISIBLE_HELPER, VISIBLE_SOURCE, label="check")
            for section in sections:
                present = any(e.name in defined for e in section_exercises(section))
                if present:
                    run.present.add(section)
                checks = []
                for exercise in section_exercises(section) if present else []:
                    sandbox.set_exercise(f"gradescope: {exercise.id}")
                    try:
                        rows = helper(exercise.id)
                        if not (isinstance(rows, list) and len(rows) <= 100 and all(
                                isinstance(r, list) and len(r) == 3 and isinstance(r[0], str)
                                and isinstance(r[1], bool) and isinstance(r[2], str) for r in rows)):
                            raise SubmissionCrashed("its answer was not a list of checks")
                        checks += [[exercise.id, title[:200], passed, message[:1500]] for title, passed, message in rows]
                    except (LearnerError, SubmissionTimeout, SubmissionCrashed) as err:
                        checks.append([exercise.id, "(the visible checks)", False, f"could not be run: {err}"[:1500]])
                run.visible[section] = {"file": label, "present": present, "checks": checks}
        except (LearnerError, SubmissionTimeout, SubmissionCrashed) as err:
            print(f"visible checks of {label} not run: {type(err).__name__}: {err}")
            for section in sections:
                run.visible_problem.setdefault(section, f"your code could not be run again for them ({err})"[:500])
        finally:
            sandbox.close()
            run.sandboxes.remove(sandbox)


def _static_sections(paths: list[Path]) -> set[str]:
    """Sections whose names the files define at top level (when the visible checks did not look)."""
    from course.grading.submission import read_submission, statically_defined

    names, found = graded_names(), set()
    for path in paths:
        try:
            found |= {names[n].split(".")[0] for n in statically_defined(read_submission(path), names)}
        except Exception:  # noqa: BLE001 - unreadable: the report says so
            pass
    return found


def run(root: Path) -> int:
    """Grade REPO/submission into REPO/results/results.json (Gradescope's layout under REPO)."""
    problem = ""
    try:
        config = Config.load(root / "source")
    except Exception as err:  # noqa: BLE001 - grade with the defaults rather than not at all
        config, problem = Config(), f"(The autograder's configuration could not be read: {err}; all sections are graded.)"
    state = Run(root, config, problem)
    (root / "results").mkdir(parents=True, exist_ok=True)
    watchdog = threading.Timer(config.time_limit, state.on_time_limit)
    watchdog.daemon = True
    watchdog.start()
    try:
        _protect(root)
        from course.grading.submission import graded_files, visible

        submission = root / "submission"
        paths = [p for p in graded_files([submission]) if p.is_file()] if submission.is_dir() else []
        state.files = [p.relative_to(submission).as_posix() for p in paths]
        if submission.is_dir():
            state.others = sorted(p.relative_to(submission).as_posix() for p in submission.rglob("*")
                                  if p.is_file() and all(visible(part) for part in p.relative_to(submission).parts)
                                  and p not in paths)
        print(f"submission: {state.files or 'no notebook or module'}; other files: {state.others[:20]}")
        if paths:
            from course.sandbox.zygote import start_in_background

            start_in_background()  # torch loads in the fork server while this process imports the grader
            from course.grading.grader import grade_files

            print(f"grader: {Path(sys.modules[grade_files.__module__].__file__).parent}")
            limits = config.grading_limits()
            report = grade_files([submission], only=config.exercise_ids, limits=limits, parallel=available_cpus())
            state.report = report
            print(f"graded in {time.monotonic() - state.begin:.1f} s: {report['score']:g} / {report['max_score']:g}"
                  + (f"; error: {report['error']}" if report.get("error") else ""))
            if config.visible_checks and not report.get("error"):
                try:
                    _visible_checks(state, submission, limits)
                except Exception as err:  # noqa: BLE001 - the grades stand without them
                    traceback.print_exc()
                    for section in config.sections:
                        state.visible_problem.setdefault(section, f"they could not be run ({type(err).__name__})")
            state.present |= {s for s in _static_sections(paths) if s not in state.visible}
        state.write(state.results())
    except BaseException as err:  # noqa: BLE001 - whatever breaks, Gradescope gets a results.json
        traceback.print_exc()
        state.write(state.results(failure=f"{type(err).__name__}: {err}"[:500]))
    finally:
        watchdog.cancel()
    if state.report is not None and not state.report.get("error"):  # for the instructor: what confined the learner's processes
        try:
            from course.sandbox.learner_process import isolation_status

            print(f"isolation: {isolation_status()}")
        except Exception as err:  # noqa: BLE001
            print(f"isolation status unknown: {err}")
    print(f"results written in {time.monotonic() - state.begin:.1f} s")
    return 0


# -- command line ---------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m course.gradescope",
                                     description="Gradescope's autograder for the course.")
    commands = parser.add_subparsers(dest="command", required=True)
    build_ = commands.add_parser("build", help="write the autograder zip to upload on Gradescope",
                                 description="Write the autograder zip: upload it on the assignment's "
                                             "Configure Autograder page.")
    build_.add_argument("--out", default="autograder.zip", help="the zip to write (default autograder.zip)")
    build_.add_argument("--sections", action="append", metavar="SECTION[,SECTION...]",
                        help=f"what the assignment grades (default all: {','.join(SECTIONS)}); repeatable")
    build_.add_argument("--hidden-visibility", choices=VISIBILITIES, default="after_published",
                        help="when learners see the graded tests (default after_published); the visible checks "
                             "and the summary are always shown")
    build_.add_argument("--time-limit", type=float, default=TIME_LIMIT,
                        help=f"seconds for a whole run (default {TIME_LIMIT:g}); keep Gradescope's timeout longer "
                             "by a minute")
    build_.add_argument("--no-visible-checks", action="store_true",
                        help="leave out the tests that run the notebook's visible checks")
    add_limit_options(build_)
    run_ = commands.add_parser("run", help="grade /autograder/submission (what run_autograder calls)")
    run_.add_argument("--root", type=Path, default=Path(os.environ.get(ROOT_ENV, "/autograder")),
                      help=f"Gradescope's /autograder (default ${ROOT_ENV} or /autograder)")
    return parser


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args.root.resolve())
    sections = [s.strip() for item in args.sections or [",".join(SECTIONS)] for s in item.split(",") if s.strip()]
    try:
        config = Config(sections=sections, hidden_visibility=args.hidden_visibility,
                        visible_checks=not args.no_visible_checks, time_limit=args.time_limit,
                        limits=asdict(limits_from(args)), course_version=_course_version())
    except ValueError as err:
        parser.error(str(err))
    summary = build(args.out, config)
    print(f"wrote {summary['out']} ({summary['files']} files, {summary['bytes'] / 1024:.0f} KiB): "
          f"{', '.join(summary['sections'])}, {summary['exercises']} exercises, {summary['points']:g} points")
    print(f"  graded tests visible: {summary['hidden_visibility']}; whole run at most {summary['time_limit']:g} s "
          f"(stopped at {summary['outer_limit']} s)")
    print("  on Gradescope: a Programming Assignment worth "
          f"{summary['points']:g} points; Configure Autograder: upload {Path(summary['out']).name}, base image "
          "Ubuntu 22.04 or later; Autograder settings: timeout of at least "
          f"{math.ceil((summary['outer_limit'] + 60) / 60):g} minutes, 2 GB of memory or more")
    return 0


if __name__ == "__main__":
    sys.exit(main())
