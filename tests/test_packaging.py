"""pyproject.toml and environment.yml list the same packages; the README's commands exist."""
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
