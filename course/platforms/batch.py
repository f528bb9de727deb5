"""Grade a class: ``python -m course.batch SUBMISSIONS_DIR --out OUT_DIR``.

SUBMISSIONS_DIR holds one entry per learner: a notebook or module (``alice.ipynb``), or a
folder (``bob/``) whose notebooks and modules are graded together as one submission (one
report with every exercise). An nbgrader course (``submitted/{student}/{assignment}/`` beside
nbgrader's own files, decide_layout) is read as such: pass the course root or its ``submitted``
folder, or ask with ``--layout nbgrader``; a learner's files never decide it. With ``--gradebook`` each
submitted assignment is graded on its own and written into the course's nbgrader gradebook and
``autograded/`` folder, in place of ``nbgrader autograde`` (course.platforms.nbgrader_gradebook).

Learners are graded in parallel by long-lived graders (course.platforms.batch_worker: torch, pytest
and the sandbox fork server stay loaded), locally or on Dask distributed
(``--scheduler dask``). Each result is written atomically to ``OUT_DIR/students/<id>.json``
as soon as it is known; a re-run skips learners whose files and grading set-up have not
changed, so a killed run resumes where it stopped. A submission that cannot be read, or
hangs or kills its grader, gets a report with an ``error``; the batch goes on.

At the end (also of a resumed run) the grade sheet ``OUT_DIR/grades.csv`` and Gradescope's
``OUT_DIR/gradescope/<id>/results.json`` are written from the per-learner results (also those
of other nbgrader assignments graded into OUT_DIR earlier). Exit status 3: nobody could be graded.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import queue
import re
import signal
import sys
import threading
import time
import unicodedata
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from course.cores import available_cpus, pin_one_core_each
from course.exercises import EXERCISES
from course.files import write_atomic
from course.locations import REPO, suites_dir
from course.platforms.gradescope.results import exercise_test, report_data, report_lines, results_document
from course.sandbox.limits import Limits, add_limit_options, limits_from
from course.grading.integrity import ALLOW_UNCONFINED_HELP, CodeGuard, GradingRefused
from course.grading.report import failed_report
from course.grading.request import GradeRequest
from course.grading.staging import snapshot
from course.grading.submission import SUBMISSION_SUFFIXES, submission_files, visible

FORMATS = ("json", "csv", "gradescope")
NOBODY_GRADED = 3  # exit status: no learner of the folder has a grade (1: another batch runs; 2: bad arguments)
FILE_MB_FOR_HASH = Limits().file_mb  # files the grader would copy beside the code count in the resume hash
RESULT_VERSION = 2  # (a record holds the grading report of course/grading/report.schema.json)
STARTED = "started"  # on the results queue: (student, STARTED, worker) when a worker takes a learner


# -- finding the learners -------------------------------------------------------------

@dataclass
class Student:
    id: str                      # safe as a file name; unique in the batch
    files: list[Path]            # what is graded, together
    root: Path                   # names in reports are relative to this
    problem: str = ""            # why there is nothing to grade (empty folder, ...)
    assignment: str = ""         # nbgrader tree graded by assignment: submitted/{root.name}/{assignment}/
    folder: Path | None = None   # the learner's own folder: its other files (helper modules, data) are
    #                              beside the code while it is graded (folder layout)
    beside: list[Path] = field(default_factory=list)  # nbgrader layout: the assignment folders; their
    #                              other files are beside the notebooks while graded, not graded
    assignments: list[str] | None = None  # nbgrader layout: the assignments graded (None: folder layout)
    hash: str = field(default="", repr=False)

    def names(self) -> list[str]:
        return [as_text(f.relative_to(self.root).as_posix()) for f in self.files]

    def paths(self) -> list[Path]:
        """What the grader is given: the learner's folder (its notebooks and modules are graded,
        its other files copied beside them), else the files themselves."""
        return [self.folder] if self.folder and self.files else list(self.files)

    def context(self) -> list[tuple[Path, bytes | None]]:
        """Every file the learner's code may read while graded (graded files first) and its content,
        read once as grading reads it (course.grading.staging; None: it cannot be read)."""
        with snapshot(self.paths(), FILE_MB_FOR_HASH, self.beside) as staged:
            files = staged.graded + [f for _, f in staged.copies if f not in staged.graded]
            return [(staged.sources[f], f.read_bytes()) for f in files] + [(p, None) for p, _ in staged.refused]


_SURROGATE = re.compile("[\ud800-\udfff]")


def as_text(name: str) -> str:
    """A name from the file system as valid text: bytes that are not UTF-8 (what unzip leaves of a
    Windows archive; Python holds them as lone surrogates) are written \\xNN, so they stay distinct."""
    def escape(match) -> str:
        code = ord(match.group())
        return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"

    return _SURROGATE.sub(escape, name)


def _as_text_in(value):
    """`value` (a report from the grader: dicts, lists, strings) with every string made valid text."""
    if isinstance(value, str):
        return as_text(value)
    if isinstance(value, dict):
        return {as_text(k) if isinstance(k, str) else k: _as_text_in(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_text_in(v) for v in value]
    return value


def _safe_id(name: str) -> str:
    """The learner's name as a file name: letters of any script, digits and ._@+- are kept."""
    safe = re.sub(r"[^\w.@+-]", "_", unicodedata.normalize("NFC", as_text(name))).lstrip(".") or "_"
    return safe[:120]


def _unique(students: list[Student]) -> list[Student]:
    seen: dict[str, int] = {}
    for s in students:
        seen[s.id] = seen.get(s.id, 0) + 1
    for s in students:  # the same id twice (alice.py and alice.ipynb): keep the whole name
        if seen[s.id] > 1 and len(s.files) == 1 and s.files[0].parent == s.root:
            s.id = _safe_id(s.files[0].name)
    taken: set[str] = set()
    for s in students:
        if s.id in taken:
            s.id = f"{s.id}-{hashlib.sha256(os.fsencode(str(s.files or s.root))).hexdigest()[:8]}"
        taken.add(s.id)
    return students


NBGRADER_MARKERS = ("nbgrader_config.py", "gradebook.db", "source")  # a course's own, never in a learner's folder
LAYOUTS = ("folder", "nbgrader")


@dataclass
class Layout:
    """How a submissions folder is read, decided from the course folder's own structure or as asked,
    never from what a learner's folder holds (a learner must not decide how the others are graded)."""
    name: str        # 'folder': a learner per notebook, module or folder; 'nbgrader': submitted/{student}/{assignment}/
    learners: Path   # the folder whose entries are the learners (nbgrader: the submitted/ folder)
    why: str

    @property
    def course_root(self) -> Path:
        return self.learners.parent


def _course_marker(folder: Path) -> str:
    return next((m for m in NBGRADER_MARKERS if (folder / m).exists()), "")


def decide_layout(folder, asked: str | None = None) -> Layout:
    """nbgrader when `asked`, or when `folder` (or the folder holding it, if it is `submitted/`) is
    an nbgrader course: a submitted/ folder beside one of nbgrader's own files (NBGRADER_MARKERS)."""
    folder = Path(folder).resolve()
    tree = folder / "submitted" if (folder / "submitted").is_dir() else folder
    if asked == "folder":
        return Layout("folder", folder, "as asked (--layout folder)")
    if asked == "nbgrader":
        return Layout("nbgrader", tree, f"as asked: {as_text(str(tree))}/{{student}}/{{assignment}}/")
    course = folder if tree != folder else folder.parent if folder.name == "submitted" else None
    marker = _course_marker(course) if course else ""
    if marker:
        return Layout("nbgrader", tree, f"{as_text(str(course))} is an nbgrader course (submitted/ beside its {marker})")
    return Layout("folder", folder, f"one learner per notebook, module or folder in {as_text(str(folder))} (not an "
                                    f"nbgrader course: no {', '.join(NBGRADER_MARKERS)} beside a submitted/ folder; "
                                    "--layout nbgrader reads it as submitted/{student}/{assignment}/)")


def discover(folder, assignments=None, by_assignment: bool = False,
             layout: str | None = None) -> tuple[list[Student], str, list[Path]]:
    """(learners, layout, ignored entries). Layout is 'nbgrader' or 'folder', as `layout` asks or else
    as decide_layout finds. With `by_assignment` (an nbgrader tree), each
    submitted/{student}/{assignment}/ is a learner of its own, `student.assignment`."""
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    decided = decide_layout(folder, layout)
    students, ignored = [], []
    if decided.name == "nbgrader":
        for entry in sorted(p for p in decided.learners.iterdir() if visible(p.name)):
            if not entry.is_dir():
                ignored.append(entry)
                continue
            files, beside = [], []
            for assignment in sorted(p for p in entry.iterdir() if p.is_dir() and visible(p.name)):
                if assignments and assignment.name not in assignments:
                    continue
                notebooks = [f for f in submission_files(assignment) if f.suffix == ".ipynb"]
                # (as under nbgrader autograde, a notebook finds the other files of its folder beside it)
                if by_assignment:
                    students.append(Student(_safe_id(f"{entry.name}.{assignment.name}"), notebooks, entry,
                                            "" if notebooks else "no notebook submitted", assignment=assignment.name,
                                            beside=[assignment] if notebooks else [], assignments=[assignment.name]))
                files += notebooks
                beside += [assignment] if notebooks else []
            if by_assignment:
                continue
            problem = "" if files else "no notebook submitted" + (f" for {', '.join(assignments)}" if assignments else "")
            # graded by assignment, the id names them: another assignment's grades are not overwritten
            chosen = sorted(set(assignments)) if assignments else [a.name for a in beside]
            student_id = _safe_id(f"{entry.name}.{'+'.join(chosen)}" if assignments else entry.name)
            students.append(Student(student_id, files, entry, problem, beside=beside, assignments=chosen))
        return _unique(students), "nbgrader", ignored
    for entry in sorted(p for p in folder.iterdir() if visible(p.name)):
        if entry.is_dir():
            files = submission_files(entry)
            students.append(Student(_safe_id(entry.name), files, entry,
                                    "" if files else "no notebook (.ipynb) or module (.py) in the folder",
                                    folder=entry))
        elif entry.suffix.lower() in SUBMISSION_SUFFIXES:
            students.append(Student(_safe_id(entry.stem), [entry], folder))
        else:
            ignored.append(entry)
    return _unique(students), "folder", ignored


def content_hash(student: Student) -> str:
    digest = hashlib.sha256()
    for path, data in student.context():
        digest.update(os.fsencode(path.relative_to(student.root).as_posix()) + b"\0")
        digest.update(hashlib.sha256(b"<unreadable>" if data is None else data).digest())
    digest.update(student.problem.encode())
    return digest.hexdigest()


def grading_key(template: GradeRequest) -> str:
    """Changes when what a grade means changes: the hidden suites, the points, the limits, the adapter."""
    adapter = hashlib.sha256(Path(template.adapter).read_bytes()).hexdigest() if template.adapter else None
    digest = hashlib.sha256(json.dumps({"v": RESULT_VERSION, "limits": asdict(template.limits),
                                        "only": template.only, "adapter": adapter}).encode())
    for path in sorted(suites_dir().glob("*.py")) + [REPO / "course" / "exercises.py"]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


# -- results on disk ------------------------------------------------------------------

def result_path(out: Path, student_id: str) -> Path:
    return out / "students" / f"{student_id}.json"


def load_result(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_done(result: dict | None, student: Student, key: str, retry_errors: bool) -> bool:
    if not result or result.get("submission_hash") != student.hash or result.get("grading_key") != key:
        return False
    status = result.get("status")
    return status == "graded" or (status == "error" and not retry_errors)


def make_record(student: Student, key: str, outcome: dict, worker: str) -> dict:
    report = _as_text_in(outcome["report"])  # it may quote file names that are not UTF-8
    record = {"student": student.id, "files": student.names(), "status": outcome["status"]}
    if student.assignments is not None:  # nbgrader: whose submitted/{learner}/{assignment}/ folders
        record.update(learner=as_text(student.root.name), assignments=student.assignments)
    record.update(report)  # score, max_score, exercises, notes, error?
    record.update(files=student.names(), file_sections=report.get("files", {}))  # (the report's: files by section)
    record.update({"submission_hash": student.hash, "grading_key": key, "seconds": outcome["seconds"],
                   "wall_seconds": outcome.get("wall_seconds", outcome["seconds"]),
                   "attempts": outcome.get("attempts", 1), "worker": worker,
                   "graded_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    return record


def problem_record(student: Student, key: str) -> dict:
    outcome = {"status": "error", "seconds": 0.0,
               "report": failed_report(student.problem)}
    return make_record(student, key, outcome, "-")


def earlier_results(out: Path, students: list[Student], layout: Layout) -> tuple[list[dict], list[str]]:
    """(kept, stale): the results in `out` of submissions this run does not grade. Another nbgrader
    assignment of a learner still in submitted/ is kept (in grades.csv and the report, as graded);
    the others are stale, of learners no longer in the folder: their files are kept (a grade is never
    deleted), left out of grades.csv, and named in the summary."""
    current = {s.id for s in students}
    here = ({as_text(p.name) for p in layout.learners.iterdir() if p.is_dir()} if layout.name == "nbgrader"
            else set())
    kept, stale = [], []
    for path in sorted((out / "students").glob("*.json")):
        if path.stem in current:
            continue
        record = load_result(path)
        if record and record.get("student") == path.stem and "assignments" in record and record.get("learner") in here:
            kept.append(record)
        else:
            stale.append(path.stem)
    return kept, stale


# -- grade sheet and Gradescope -------------------------------------------------------

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what makes a spreadsheet cell a formula


def _text_cell(text: str) -> str:
    """Text as a spreadsheet shows it, never as a formula it runs (a learner's id or file name)."""
    return "'" + text if text.startswith(FORMULA_START) else text


def _problem(record: dict) -> str:
    """The sheet's error cell: why nothing was graded, and the learner's modules that do not parse."""
    unparsed = [f"{n['file']} does not parse: {n['detail']}" for n in record.get("notes", []) if n["kind"] == "unreadable"]
    return "; ".join(filter(None, [record.get("error", ""), *unparsed]))


def grade_sheet(records: list[dict]) -> str:
    """CSV (RFC 4180: a line break inside a cell is quoted): one row per learner; one column per
    exercise any learner was graded on (blank: the learner submitted nothing for its section; 0:
    submitted and scored 0; n/a: graded through a convention or adapter that cannot express the
    exercise); the total; max_score, the sheet's total (what all its columns can give: a column
    that is n/a for every learner, such as an exercise the instructor's adapter declares not
    applicable, gives nothing), the same on every row; status; and error: why nothing was graded, and the learner's modules that do not
    parse (their sections are 0, not blank). Text cells that would start a formula start with '
    (_text_cell); numbers are plain numbers."""
    graded = {e["id"] for r in records for e in r.get("exercises", [])}
    columns = [i for i in EXERCISES if i in graded]
    applicable = {e["id"] for r in records for e in r.get("exercises", []) if e.get("applicable") is not False}
    max_total = sum(EXERCISES[i].points for i in columns if i in applicable)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["student", *columns, "total", "max_score", "status", "error"])
    for r in records:
        scores = {e["id"]: "n/a" if e.get("applicable") is False else f"{e['score']:g}" for e in r.get("exercises", [])}
        writer.writerow([_text_cell(r["student"]), *(scores.get(i, "") for i in columns), f"{r.get('score', 0.0):g}",
                         f"{max_total:g}", _text_cell(r.get("status", "")), _text_cell(_problem(r))])
    return out.getvalue()


def gradescope_results(record: dict) -> dict:
    """Gradescope's results.json for one learner (one test per exercise, named by its id), shaped by
    course.platforms.gradescope (which also builds the autograder Gradescope runs itself)."""
    tests = [exercise_test(e, str(number)) for number, e in enumerate(record.get("exercises", []), start=1)]
    return results_document(record.get("score", 0.0), record.get("seconds", 0.0), "\n".join(report_lines(record)),
                            tests, extra_data={"report": report_data(record)})


def write_outputs(out: Path, records: list[dict], formats) -> list[Path]:
    written = []
    if "csv" in formats:
        path = out / "grades.csv"
        write_atomic(path, grade_sheet(records))
        written.append(path)
    if "gradescope" in formats:
        for r in records:
            path = out / "gradescope" / r["student"] / "results.json"
            write_atomic(path, json.dumps(gradescope_results(r), indent=1))
        written.append(out / "gradescope")
    return written


# -- running ----------------------------------------------------------------------------

@dataclass
class Job:
    student: Student
    timeout: float


def student_timeout(limits: Limits, student: Student, override: float | None) -> float:
    """How long one learner may keep a grader busy before it is killed (the sandbox's own limits
    normally end things long before)."""
    if override:
        return override
    cells = limits.cell_seconds * 4 + limits.file_seconds
    return 60.0 + cells * max(1, len(student.files))


def learners_request(template: GradeRequest, student: Student) -> GradeRequest:
    """The batch's request (only, limits, adapter) for one learner's files."""
    return replace(template, paths=tuple(map(str, student.paths())), beside=tuple(map(str, student.beside)))


class LocalRun:
    """A pool of `workers` threads, each driving one warm grading process."""

    def __init__(self, jobs: list[Job], template: GradeRequest, workers: int, out: Path, results: queue.Queue,
                 retries: int = 1, pin: bool = True, trust: tuple = ("", False)):
        self.stop = threading.Event()
        self.graders: list = []
        count = max(1, min(workers, len(jobs)))
        self.cores = pin_one_core_each(count) if pin else [None] * count  # each worker's core, if pinned
        self.threads = _local(jobs, template, self.cores, out, results, self.stop, self.graders, retries, trust)

    def close(self, completed: bool) -> None:
        self.stop.set()
        if not completed:  # interrupted: do not wait for the learners being graded
            for grader in list(self.graders):
                grader.kill()
        for thread in self.threads:
            thread.join(timeout=30)


def _local(jobs: list[Job], template: GradeRequest, cores: list, out: Path, results: queue.Queue,
           stop: threading.Event, graders: list, retries: int, trust: tuple = ("", False)) -> list[threading.Thread]:
    """One thread per entry of `cores` (a worker's cores, or None), each driving a grading process.
    `trust`: (the batch's code digest, allow_unconfined), see course.grading.integrity."""
    from course.platforms.batch_worker import GraderWorker, grade_student

    todo: queue.Queue = queue.Queue()
    for job in jobs:
        todo.put(job)
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    def run(index: int) -> None:
        worker = GraderWorker(template.limits, name=f"worker-{index}", log_path=logs / f"worker-{index}.log",
                              cores=cores[index - 1], digest=trust[0], allow_unconfined=trust[1])
        graders.append(worker)
        try:
            while not stop.is_set():
                try:
                    job = todo.get_nowait()
                except queue.Empty:
                    return
                results.put((job.student, STARTED, worker.name))
                outcome = grade_student(worker, job.student.id, learners_request(template, job.student), job.timeout,
                                        retries)
                results.put((job.student, outcome, worker.name))
                if outcome.get("refused"):  # that worker has stopped; the batch stops too
                    stop.set()
        except BaseException as err:  # noqa: BLE001 - never leave the main loop waiting
            results.put((None, err, worker.name))
        finally:
            worker.stop()

    threads = [threading.Thread(target=run, args=(i + 1,), daemon=True, name=f"batch-worker-{i + 1}")
               for i in range(len(cores))]
    for thread in threads:
        thread.start()
    return threads


def run_batch(submissions, out, *, workers: int | None = None, scheduler: str = "local",
              dask_address: str | None = None, formats=FORMATS, only=None, limits: Limits | None = None,
              force: bool = False, retry_errors: bool = False, assignments=None, progress: bool = True,
              student_seconds: float | None = None, retries: int = 1, dry_run: bool = False,
              console=None, gradebook: bool = False, pin: bool = True, layout: str | None = None,
              allow_unconfined: bool = False, adapter: str | None = None) -> dict:
    """Grade every learner in `submissions` into `out`; returns a summary dict. With `dry_run`,
    only find out who would be graded (nothing is written). `layout`: 'folder' or 'nbgrader'
    (default: decide_layout). With `gradebook` (an nbgrader course), each submitted assignment is
    graded on its own and written into the course's gradebook and autograded/ folder
    (course.platforms.nbgrader_gradebook). Raises GradingRefused (results so far kept) if learners
    would not be confined (unless `allow_unconfined`), or if the hidden suites or the course
    package change while they are graded (course.grading.integrity)."""
    limits = limits or Limits()
    out = Path(out).resolve()
    if not dry_run:
        out.mkdir(parents=True, exist_ok=True)
    workers = workers or available_cpus()
    decided = decide_layout(submissions, "nbgrader" if gradebook else layout)
    course_root = decided.course_root
    if gradebook:
        from course.platforms.nbgrader_gradebook import gradebook_assignments

        assignments = assignments or gradebook_assignments(course_root)
    students, layout, ignored = discover(submissions, assignments, by_assignment=gradebook, layout=decided.name)
    template = GradeRequest((), only=tuple(only) if only else None, limits=limits,
                            adapter=os.path.abspath(adapter) if adapter else None)
    key = grading_key(template)
    for stale in (out / "students").glob(".*.tmp"):  # a write cut short by a killed run
        stale.unlink(missing_ok=True)
    pending, skipped, records, problems = [], 0, {}, 0
    for student in students:
        student.hash = content_hash(student)
        previous = None if force else load_result(result_path(out, student.id))
        if is_done(previous, student, key, retry_errors):
            records[student.id] = previous
            skipped += 1
        elif student.problem:
            records[student.id] = problem_record(student, key)
            problems += 1
            if not dry_run:
                write_atomic(result_path(out, student.id), json.dumps(records[student.id], indent=1))
        else:
            pending.append(Job(student, student_timeout(limits, student, student_seconds)))
    if dry_run:
        return {"students": len(students), "layout": layout, "layout_why": decided.why, "graded_now": len(pending),
                "skipped": skipped, "nothing_to_grade": problems, "to_grade": [job.student.id for job in pending],
                "with_grade": len(pending) + sum(r.get("status") == "graded" for r in records.values()),
                "ignored": [as_text(str(p)) for p in ignored],
                "out": as_text(str(out)), "dry_run": True}

    digest = CodeGuard().expected  # what the workers must grade with, also when one is restarted
    lock = _lock(out)  # one batch at a time per output folder (released when this process ends)
    begin = time.monotonic()
    counts = {"graded": 0, "error": problems, "grader-failed": 0}  # nothing to grade: an error record
    results: queue.Queue = queue.Queue()
    run = None
    if pending:
        if scheduler == "dask":
            from course.platforms.batch_dask import DaskRun

            run = DaskRun(pending, template, workers, results, address=dask_address, retries=retries,
                          trust=(digest, allow_unconfined))
        else:
            run = LocalRun(pending, template, workers, out, results, retries, pin, (digest, allow_unconfined))

    bar = _Progress(len(students), len(students) - len(pending), progress, console)
    completed = False
    try:
        with bar:
            done = 0
            while done < len(pending):
                try:
                    student, outcome, worker = results.get(timeout=1.0)
                except queue.Empty:
                    bar.tick()
                    continue
                if outcome is STARTED:
                    bar.started(student.id)
                    continue
                if isinstance(outcome, GradingRefused):
                    raise outcome
                if student is None:  # a pool thread or the Dask client failed: stop (a re-run resumes)
                    raise RuntimeError(f"the batch stopped: {worker}: {outcome!r}")
                record = make_record(student, key, outcome, worker)
                write_atomic(result_path(out, student.id), json.dumps(record, indent=1))
                records[student.id] = record
                counts[record["status"]] = counts.get(record["status"], 0) + 1
                done += 1
                bar.advance(f"{student.id}: {record['score']:g}/{record['max_score']:g}"
                            + (f" ({record['status']})" if record["status"] != "graded" else ""), student.id)
                if outcome.get("refused"):  # (this learner's record says so, and is graded again next run)
                    raise GradingRefused(outcome["refused"])
        completed = True
    finally:
        if run is not None:
            run.close(completed)
        lock.close()
    elapsed = time.monotonic() - begin
    start_up = max((g.startup_seconds for g in run.graders), default=0.0) if isinstance(run, LocalRun) else None
    kept, stale = earlier_results(out, students, decided)
    ordered = [records[s.id] for s in students if s.id in records] + kept
    written = write_outputs(out, ordered, formats)
    book = None
    if gradebook:
        from course.platforms.nbgrader_gradebook import write_gradebook

        book = write_gradebook(course_root, [(s, records[s.id]) for s in students if s.id in records], out)
    return {"students": len(students), "layout": layout, "layout_why": decided.why, "graded_now": len(pending),
            "skipped": skipped, "nothing_to_grade": problems, "counts": counts, "seconds": round(elapsed, 2),
            "with_grade": sum(r.get("status") == "graded" for r in records.values()),
            "worker_start_seconds": None if start_up is None else round(start_up, 2),
            "worker_cores": [sorted(c) for c in run.cores if c] if isinstance(run, LocalRun) else [],
            "seconds_per_student": round(elapsed / len(pending), 3) if pending else None,
            "ignored": [as_text(str(p)) for p in ignored], "outputs": [as_text(str(p)) for p in written],
            "out": as_text(str(out)),
            "kept": [r["student"] for r in kept], "stale": stale, "gradebook": book}


class BatchRunning(RuntimeError):
    """Another batch is writing to the same output folder."""


def _lock(out: Path):
    import fcntl

    handle = open(out / ".batch.lock", "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise BatchRunning(f"another batch is writing to {out}; wait for it or stop it") from None
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


class _Progress:
    """A rich progress bar on a terminal; one line per learner otherwise (a log); or nothing. Both
    name the learners being graded: the bar all along, the log after QUIET_SECONDS without a line
    (one learner may hang while the others are done)."""

    QUIET_SECONDS = 60.0
    NAMED = 3  # learners named on the bar (then "+N")

    def __init__(self, total: int, already: int, enabled: bool, console=None):
        self.enabled, self.total, self.done = enabled, total, already
        self.last, self.busy = "", {}  # the last result shown; learner id -> when its grading started
        self.quiet_since = time.monotonic()
        if enabled:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self.console = console or Console(stderr=True)
            self.bar = self.console.is_terminal
            self._progress = Progress(TextColumn("[bold]grading"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TimeRemainingColumn(),
                                      TextColumn("{task.description}", markup=False),
                                      console=self.console, disable=not self.bar)
            self._task = self._progress.add_task("", total=total, completed=already)

    def __enter__(self):
        if self.enabled:
            self._progress.__enter__()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self._progress.__exit__(*exc)

    def _grading(self) -> str:
        now = time.monotonic()
        longest = sorted(self.busy, key=self.busy.get)
        named = [f"{i} ({now - self.busy[i]:.0f} s)" for i in longest[:self.NAMED]]
        return ", ".join(named) + (f" +{len(longest) - self.NAMED}" if len(longest) > self.NAMED else "")

    def line(self) -> str:
        """The bar's text: the last result, and who is being graded (longest first, with for how long)."""
        return " | ".join(filter(None, (self.last, f"grading {self._grading()}" if self.busy else "")))

    def _show(self, advance: int = 0) -> None:
        if self.enabled:
            self._progress.update(self._task, advance=advance, description=self.line())

    def started(self, student_id: str) -> None:
        self.busy[student_id] = time.monotonic()
        self._show()

    def tick(self) -> None:
        """Nothing finished for a while: keep the times on the bar current; the log says who is still graded."""
        self._show()
        if self.enabled and not self.bar and self.busy and time.monotonic() - self.quiet_since >= self.QUIET_SECONDS:
            self.console.print(f"still grading: {self._grading()}", markup=False, highlight=False)
            self.quiet_since = time.monotonic()

    def advance(self, text: str, student_id: str = "") -> None:
        self.done += 1
        self.last = text
        self.busy.pop(student_id, None)
        self.quiet_since = time.monotonic()
        self._show(advance=1)
        if self.enabled and not self.bar:
            self.console.print(f"graded {self.done}/{self.total}: {text}", markup=False, highlight=False)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m course.batch", description=__doc__.split("\n\n")[0])
    parser.add_argument("submissions", help="folder: one notebook/module or folder per learner, or an nbgrader "
                                            "course (its submitted/{student}/{assignment}/ tree)")
    parser.add_argument("--out", required=True, help="folder for students/*.json, grades.csv, gradescope/")
    parser.add_argument("--workers", type=int, default=available_cpus(),
                        help="grading processes in parallel (default: the cores this process may use)")
    parser.add_argument("--no-pin", action="store_true",
                        help="do not confine each worker to one core (done when there are as many workers as "
                             "cores: faster, unless other programs keep some of those cores busy)")
    parser.add_argument("--scheduler", choices=("local", "dask"), default="local")
    parser.add_argument("--dask-address", help="an existing Dask scheduler (default: start a LocalCluster)")
    parser.add_argument("--format", action="append", metavar="FORMAT",
                        help=f"outputs to write besides students/*.json: {', '.join(FORMATS[1:])} "
                             "(repeatable or comma-separated; default all)")
    parser.add_argument("--assignment", action="append", help="nbgrader tree: grade only this assignment (repeatable)")
    parser.add_argument("--only", action="append", metavar="EXERCISE_ID", help="grade only this exercise (repeatable)")
    parser.add_argument("--conventions", action="store_true",
                        help="grade code written to other conventions (Hugging Face, Meta, CS336, BLOOM, ...) through "
                             "them, excusing what they cannot express; off by default, so that no learner chooses "
                             "which checks apply to them")
    parser.add_argument("--adapter", metavar="ADAPTER.py",
                        help="as for python -m course.grade: a Python file run after each learner's code, defining the "
                             "course's names from functions written to other signatures (the instructor's, the same "
                             "for every learner)")
    parser.add_argument("--gradebook", action="store_true",
                        help="nbgrader course: grade each submitted assignment in the sandbox and write the scores into "
                             "its gradebook.db and autograded/ (instead of nbgrader autograde; formgrader, "
                             "generate_feedback and export work on them)")
    parser.add_argument("--force", action="store_true", help="grade everyone again, even unchanged submissions")
    parser.add_argument("--retry-errors", action="store_true",
                        help="grade again the submissions whose last result is an error")
    parser.add_argument("--student-seconds", type=float,
                        help="kill a grader that spends longer than this on one learner (default: from the limits)")
    parser.add_argument("--retries", type=int, default=1,
                        help="grade a learner again on a fresh grader after it hung or died (default 1)")
    parser.add_argument("--dry-run", action="store_true", help="only list who would be graded")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (on a terminal) nor a line per learner (otherwise)")
    parser.add_argument("--summary", choices=("text", "json"), default="text", help="what to print at the end")
    # -- the layout: decided from the course folder or as asked, never from a learner's files --
    parser.add_argument("--layout", choices=LAYOUTS,
                        help="folder: one notebook, module or folder per learner; nbgrader: submitted/{student}/"
                             "{assignment}/ (default: nbgrader only for an nbgrader course, a submitted/ folder "
                             f"beside {', '.join(NBGRADER_MARKERS)}, given as its root or its submitted/; "
                             "--gradebook implies nbgrader)")
    add_limit_options(parser)
    # What grading a class requires of the platform (course.grading.integrity).
    parser.add_argument("--allow-unconfined", action="store_true", help=ALLOW_UNCONFINED_HELP)
    return parser


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    formats = {"json"}
    for item in args.format or ["csv,gradescope"]:
        for name in filter(None, (x.strip() for x in item.split(","))):
            if name not in FORMATS:
                parser.error(f"unknown format {name!r}; choose from {', '.join(FORMATS)}")
            formats.add(name)
    unknown = [i for i in args.only or [] if i not in EXERCISES]
    if unknown:
        parser.error(f"unknown exercise id(s): {', '.join(unknown)}")
    if not Path(args.submissions).is_dir():
        parser.error(f"{args.submissions} is not a folder")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        parser.error(f"--out {args.out} is a file; give a folder for the results")
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, not {args.workers}")
    if args.adapter and not Path(args.adapter).is_file():
        parser.error(f"--adapter {args.adapter} is not a file")
    # -- the layout --
    if args.gradebook and (args.layout == "folder" or args.only):
        parser.error("--gradebook grades whole assignments of an nbgrader course (no --only, no --layout folder)")
    layout = decide_layout(args.submissions, "nbgrader" if args.gradebook else args.layout)
    if args.gradebook and layout.learners.name != "submitted":
        parser.error(f"--gradebook needs an nbgrader course: its root or its submitted/ folder, not {args.submissions}")
    if args.assignment and layout.name != "nbgrader":
        parser.error(f"--assignment needs the nbgrader layout; {layout.why}")
    print(f"layout: {layout.name}: {layout.why}", file=sys.stderr)
    limits = limits_from(args)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop like Ctrl-C: graders are closed
    try:
        summary = run_batch(args.submissions, args.out, workers=args.workers, scheduler=args.scheduler,
                            dask_address=args.dask_address, formats=formats, only=args.only, limits=limits,
                            force=args.force, retry_errors=args.retry_errors, assignments=args.assignment,
                            progress=not args.no_progress,
                            student_seconds=args.student_seconds, retries=args.retries, dry_run=args.dry_run,
                            gradebook=args.gradebook, pin=not args.no_pin, layout=layout.name,
                            allow_unconfined=args.allow_unconfined, adapter=args.adapter)
    except KeyboardInterrupt:
        print("interrupted: the results written so far are kept; run again to resume", file=sys.stderr)
        return 130
    except BatchRunning as err:
        print(err, file=sys.stderr)
        return 1
    except GradingRefused as err:
        print(f"{err}\nthe results written so far are kept", file=sys.stderr)
        return 3
    if not args.dry_run:  # what to re-teach (course.platforms.class_report); the grades stand without it
        try:
            from course.platforms.class_report import write_class_report

            summary["report"] = [str(p) for p in write_class_report(args.out, exclude=summary["stale"])]
        except Exception as err:  # noqa: BLE001
            print(f"the class report was not written: {type(err).__name__}: {err}", file=sys.stderr)
    if args.summary == "json":
        print(json.dumps(summary, indent=1))
    elif args.dry_run:
        print(f"{summary['students']} learners ({summary['layout']} layout): {summary['graded_now']} to grade, "
              f"{summary['nothing_to_grade']} with nothing to grade, {summary['skipped']} unchanged since the last run")
        for student in summary["to_grade"]:
            print(f"  {student}")
    else:
        c = summary["counts"]
        print(f"{summary['students']} learners ({summary['layout']} layout): {summary['graded_now']} graded now "
              f"in {summary['seconds']:g} s, {summary['nothing_to_grade']} with nothing to grade, "
              f"{summary['skipped']} unchanged since the last run")
        print(f"  this run: graded {c.get('graded', 0)}, could not grade {c.get('error', 0)}, grader failures "
              f"{c.get('grader-failed', 0)}")
        for path in summary["ignored"]:
            print(f"  ignored (not a notebook, module or folder): {path}")
        if summary["kept"]:
            print(f"  kept in grades.csv: {len(summary['kept'])} results of other assignments graded into {args.out} "
                  f"earlier: {', '.join(summary['kept'])}")
        if summary["stale"]:
            print(f"  kept, not in grades.csv: results of learners no longer in {args.submissions}: "
                  f"{', '.join(summary['stale'])} (students/<id>.json, gradescope/<id>/)")
        print(f"  results: {summary['out']}/students/*.json" + "".join(f", {p}" for p in summary["outputs"]))
        if summary["gradebook"]:
            book = summary["gradebook"]
            print(f"  gradebook: {len(book['written'])} submissions written to {book['gradebook']} and {book['autograded']}, "
                  f"{len(book['unchanged'])} unchanged")
            for line in book["left_out"]:
                print(f"  not in the gradebook: {line}")
        if summary.get("report"):
            print(f"  report: {summary['report'][0]} (what to re-teach), {summary['report'][1]}")
    if not summary["with_grade"]:  # a batch that grades nobody must not look like a success
        print(f"nobody could be graded ({summary['layout']} layout: {summary['layout_why']})", file=sys.stderr)
        return NOBODY_GRADED
    return 0


if __name__ == "__main__":
    sys.exit(main())
