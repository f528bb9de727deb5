"""Building the autograder zip: setup.sh, run_autograder, the course package and the chosen hidden suites."""
from __future__ import annotations

import hashlib
import json
import math
import re
import zipfile
from dataclasses import asdict
from pathlib import Path

from course.files import write_atomic
from course.locations import REPO, suites_dir
from course.platforms.gradescope.config import CONFIG_NAME, Config


NEVER_SHIPPED = ("solutions", "source_notebooks")
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


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
started="$(date +%s.%N 2>/dev/null)"  # the grader's own time limit counts from here: its start-up included
case "$started" in *N*|"") started="$(date +%s)" ;; esac
if cd "$root/source"; then
  if command -v timeout >/dev/null 2>&1; then
    timeout --kill-after=10 "$limit" "$python" -m course.gradescope run --root "$root" ${started:+--started "$started"} || status=$?
  else
    "$python" -m course.gradescope run --root "$root" ${started:+--started "$started"} || status=$?
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


def course_version() -> str:
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
