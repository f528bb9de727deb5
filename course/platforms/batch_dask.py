"""course.batch on Dask distributed (``--scheduler dask``).

Each task carries one learner's files (their bytes: the Dask workers need not share a file
system with the batch) and grades them through the same long-lived grader process as the
local pool (course.platforms.batch_worker.GraderWorker), one per Dask worker thread, started on the
first task and kept warm for the next ones. Results come back to the batch process, which
writes them, so the outputs are those of a local run.
"""
from __future__ import annotations

import json
import logging
import queue
import tempfile
import threading
from pathlib import Path, PurePosixPath

_GRADERS: dict = {}
_GRADERS_LOCK = threading.Lock()


def _grader(limits: dict, trust=("", False)):
    """`trust`: (the batch's code digest, allow_unconfined), see course.grading.integrity."""
    from course.platforms.batch_worker import GraderWorker
    from course.sandbox.limits import Limits

    key = (threading.get_ident(), json.dumps(limits, sort_keys=True), tuple(trust))
    with _GRADERS_LOCK:
        if key not in _GRADERS:
            _GRADERS[key] = GraderWorker(Limits(**limits), name=f"dask-grader-{len(_GRADERS) + 1}", digest=trust[0],
                                         allow_unconfined=trust[1])
        return _GRADERS[key]


def grade_remote(student_id: str, files: list, template: dict, adapter: bytes | None, timeout: float,
                 retries: int = 1, as_folder: bool = False, beside=(), trust=("", False)) -> dict:
    """Runs on a Dask worker: materialise the learner's files, grade them (`as_folder`: the whole
    folder, as the learner's own, its other files beside the code; else the files named in
    `files` with a flag, and the folders named in `beside` are copied beside them), return the
    outcome. `files`: (relative name, bytes or None if unreadable, graded?) triples; `template`: the
    batch's GradeRequest as JSON (only, limits), `adapter`: its adapter file's bytes, if any."""
    from course.grading.request import GradeRequest
    from course.platforms.batch_worker import grade_student
    from course.sandbox.limits import Limits

    try:
        from distributed import get_worker

        where = get_worker().address
    except (ImportError, ValueError):
        where = "dask"
    with tempfile.TemporaryDirectory(prefix="course-batch-") as folder, \
            tempfile.TemporaryDirectory(prefix="course-adapter-") as instructor:
        def inside(name: str) -> Path:
            relative = PurePosixPath(name)
            if relative.is_absolute() or ".." in relative.parts:
                raise ValueError(f"refusing file name {name!r}")
            return Path(folder, *relative.parts)

        paths = []
        for name, data, graded in files:
            path = inside(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            if data is not None:  # None: the batch could not read it; the grader says so
                path.write_bytes(data)
            if graded:
                paths.append(path)
        if as_folder:
            paths = [Path(folder)]
        if adapter is not None:  # (beside the learner's folder, never in it)
            Path(instructor, "adapter.py").write_bytes(adapter)
        limits = template["limits"]
        request = GradeRequest.from_json({**template, "paths": [str(p) for p in paths],
                                          "beside": [str(inside(name)) for name in beside],
                                          "adapter": str(Path(instructor, "adapter.py")) if adapter is not None else None},
                                         Limits(**limits))
        outcome = grade_student(_grader(limits, trust), student_id, request, timeout, retries)
    outcome["worker"] = where
    return outcome


class DaskRun:
    """Submit every job to a Dask cluster; put (student, outcome, worker) on `results`."""

    def __init__(self, jobs, template, workers: int, results: queue.Queue, address: str | None = None,
                 retries: int = 1, trust=("", False)):
        from distributed import Client, LocalCluster

        self.cluster = None
        if address:
            self.client = Client(address)
        else:
            self.cluster = LocalCluster(n_workers=max(1, workers), threads_per_worker=1, processes=True,
                                        dashboard_address=None, silence_logs=logging.ERROR)
            self.client = Client(self.cluster)
        self._results = results
        self.futures = {}
        adapter = Path(template.adapter).read_bytes() if template.adapter else None
        for job in jobs:
            as_folder = job.student.paths() != job.student.files
            base = job.student.folder if as_folder else job.student.root
            files = []
            for path, data in job.student.context():
                files.append((path.relative_to(base).as_posix(), data, path in job.student.files))
            beside = [folder.relative_to(base).as_posix() for folder in job.student.beside]
            future = self.client.submit(
                grade_remote, job.student.id, files, template.to_json(), adapter, job.timeout, retries, as_folder,
                beside, tuple(trust),
                key=f"course-grade-{job.student.id}-{job.student.hash[:16]}", pure=False,
                retries=1,  # Dask's own: the task again if its Dask worker died
            )
            self.futures[future] = job
        self._thread = threading.Thread(target=self._collect, daemon=True, name="dask-results")
        self._thread.start()

    def _collect(self) -> None:
        from distributed import as_completed

        from course.grading.integrity import GradingRefused
        from course.platforms.batch_worker import failure_report

        try:
            for future in as_completed(list(self.futures)):
                job = self.futures[future]
                try:
                    outcome = future.result()
                except GradingRefused as err:  # a worker would not grade here: the batch stops
                    self._results.put((None, err, "dask"))
                    return
                except Exception as err:  # noqa: BLE001 - the task itself failed on the cluster
                    outcome = {"status": "grader-failed", "seconds": 0.0,
                               "report": failure_report(f"grading failed on Dask: {type(err).__name__}: {err}")}
                self._results.put((job.student, outcome, outcome.pop("worker", "dask")))
        except BaseException as err:  # noqa: BLE001 - the client lost the cluster
            self._results.put((None, err, "dask"))

    def close(self, completed: bool = True) -> None:
        if not completed:
            self.client.cancel(list(self.futures))
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()
