"""Prepare the learner's workspace: the released notebooks (no solutions, no hidden tests).

``python -m course.workspace [--dir workspace]`` generates every assignment with nbgrader
and copies it into the workspace. A notebook the learner has changed is never
overwritten: if the course has a newer version, it is written beside it as
``NAME.course-update.ipynb``. A manifest remembers what was last written.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from course.exercises import NOTEBOOKS
from course.files import write_atomic
from course.locations import REPO

MANIFEST = ".course-manifest.json"
UNGRADED_NOTEBOOKS = ("09_extrapolation_lab", "10_production")  # nothing to grade; released like the others


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _interpreter_bin_on_path() -> None:
    """nbgrader runs `alembic` from PATH: make it find the one installed beside this Python
    (a virtual environment used without being activated)."""
    here = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if here not in path.split(os.pathsep):
        os.environ["PATH"] = here + os.pathsep + path


def generate_release(out: Path) -> dict[str, Path]:
    """Generate the student version of every source notebook into `out`; paths by name."""
    _interpreter_bin_on_path()
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    config = Config()
    config.CourseDirectory.root = str(out)
    config.CourseDirectory.source_directory = "source"
    config.CourseDirectory.db_url = f"sqlite:///{out / 'gradebook.db'}"
    config.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
    config.ClearSolutions.text_stub = "YOUR ANSWER HERE"
    names = [n for n in (*NOTEBOOKS.values(), *UNGRADED_NOTEBOOKS)
             if (REPO / "source_notebooks" / n / f"{n}.ipynb").exists()]
    for name in names:
        shutil.copytree(REPO / "source_notebooks" / name, out / "source" / name)
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    released = {}
    for name in names:
        result = api.generate_assignment(name)
        if not result["success"]:
            raise RuntimeError(f"nbgrader could not generate {name}:\n{result.get('log', '')}\n{result.get('error', '')}")
        released[name] = out / "release" / name / f"{name}.ipynb"
    return released


def sync(workspace: Path, released: dict[str, Path]) -> dict[str, list[str]]:
    """Copy released notebooks into the workspace without losing the learner's work."""
    workspace.mkdir(parents=True, exist_ok=True)
    manifest_path = workspace / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    report = {"new": [], "updated": [], "unchanged": [], "kept": []}
    for name, release in released.items():
        target = workspace / f"{name}.ipynb"
        new_digest = _digest(release)
        if not target.exists():
            write_atomic(target, release.read_bytes())
            report["new"].append(target.name)
        elif _digest(target) == manifest.get(name):  # the learner has not touched it
            if new_digest == manifest[name]:
                report["unchanged"].append(target.name)
                continue
            write_atomic(target, release.read_bytes())
            report["updated"].append(target.name)
        else:
            if new_digest != manifest.get(name):
                update = workspace / f"{name}.course-update.ipynb"
                write_atomic(update, release.read_bytes())
                report["kept"].append(f"{target.name} (yours; the course's newer version is {update.name})")
            else:
                report["kept"].append(f"{target.name} (yours)")
            continue
        manifest[name] = new_digest
        write_atomic(manifest_path, json.dumps(manifest, indent=1))
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Prepare the learner's notebooks.")
    parser.add_argument("--dir", default=str(REPO / "workspace"), help="workspace folder (default: ./workspace)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="course-release-") as tmp:
        report = sync(Path(args.dir), generate_release(Path(tmp)))
    labels = {"new": "new", "updated": "updated from the course", "unchanged": "unchanged",
              "kept": "kept, you changed it"}
    for key, label in labels.items():
        for item in report[key]:
            print(f"{label:>24}: {item}")
    print(f"Your notebooks are in {args.dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
