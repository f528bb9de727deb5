"""pyproject.toml and environment.yml list the same packages; the README's commands exist."""
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = set(project["dependencies"]) | {r for extra in project["optional-dependencies"].values() for r in extra}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_lists = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_lists) == 1
    assert set(pip_lists[0]) == declared
    assert "torch==2.13.0" in declared


def test_readme_opens_with_the_two_commands_ci_runs():
    lines = (ROOT / "README.md").read_text().split("```bash", 1)[1].split("```", 1)[0].strip().splitlines()
    commands = [line.split("#")[0].strip() for line in lines]
    assert commands == ["bash bin/start", "bash bin/test"]
    assert "bash bin/test" in (ROOT / ".ci" / "run").read_text()


def test_xdist_groups_stay_on_one_worker(tmp_path):
    """bin/test's `--dist loadgroup` really keeps an xdist_group on one worker (the nbgrader course
    and the JupyterLab server are built once per group); pytest-xdist#1386 broke this silently."""
    (tmp_path / "test_grouped.py").write_text(
        "import os, pathlib, pytest\n"
        "pytestmark = pytest.mark.xdist_group('one')\n"
        "@pytest.mark.parametrize('i', range(8))\n"
        "def test_where(i):\n"
        "    (pathlib.Path(__file__).parent / f\"ran-{i}-on-{os.environ['PYTEST_XDIST_WORKER']}\").touch()\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-p", "no:cacheprovider",
                           "-p", "no:randomly", "test_grouped.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    ran = [p.name.split("-on-") for p in tmp_path.glob("ran-*")]
    assert len(ran) == 8, done.stdout[-2000:]
    workers = {worker for _, worker in ran}
    assert len(workers) == 1, f"one xdist_group ran on {sorted(workers)}"


# Layers of course/ (docs/DEVELOPING.md, "The map"): a module may import its own package and lower layers.
LAYERS = {"exercises": 0, "lesson": 0, "checking": 0, "cores": 0, "files": 0, "locations": 0, "adapting": 0, "zoo": 0, "sandbox": 1, "lab": 2, "grading": 2,
          "learner": 2, "authoring": 2, "platforms": 3, "probe": 4}


def test_imports_point_one_way():
    import ast

    upward = []
    for path in sorted((ROOT / "course").rglob("*.py")):
        package = path.relative_to(ROOT / "course").parts[0].removesuffix(".py")
        mine = LAYERS.get(package, 5)  # the top-level commands may import anything
        for node in ast.walk(ast.parse(path.read_text())):
            modules = [node.module] if isinstance(node, ast.ImportFrom) and node.module else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for module in modules:
                parts = module.split(".")
                if parts[0] == "course" and len(parts) > 1 and parts[1] != package \
                        and LAYERS.get(parts[1], 5) >= mine and not (mine == 5 and parts[1] in LAYERS):
                    upward.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not upward, upward


def test_learner_processes_are_opened_one_way():
    """Outside the sandbox package, only the grader starts a learner's process (grade, and `opened`
    for the suites' --submission and the probe): adapters, conventions and the copy of the
    learner's files then apply everywhere."""
    import ast

    starting = []
    for path in sorted([*(ROOT / "course").rglob("*.py"), *(ROOT / "grader_tests").glob("*.py")]):
        if path.is_relative_to(ROOT / "course" / "sandbox") or path == ROOT / "course" / "grading" / "grader.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "LearnerProcess":
                starting.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not starting, starting
