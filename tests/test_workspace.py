"""The learner's workspace: new notebooks arrive, changed ones are never overwritten."""
import json

from course.exercises import NOTEBOOKS
from course.learner.workspace import MANIFEST, UNGRADED_NOTEBOOKS, sync
from tests.conftest import ROOT


def release(tmp_path, version):
    folder = tmp_path / f"release-{version}"
    folder.mkdir(exist_ok=True)
    paths = {}
    for name in ("01_intuition", "06_rope"):
        paths[name] = folder / f"{name}.ipynb"
        paths[name].write_text(json.dumps({"course": name, "version": version}))
    return paths


def test_sync_adds_updates_and_keeps(tmp_path):
    workspace = tmp_path / "workspace"
    first = sync(workspace, release(tmp_path, 1))
    assert sorted(first["new"]) == ["01_intuition.ipynb", "06_rope.ipynb"]
    assert sync(workspace, release(tmp_path, 1))["unchanged"] == ["01_intuition.ipynb", "06_rope.ipynb"]

    mine = '{"my": "work"}'
    (workspace / "06_rope.ipynb").write_text(mine)
    second = sync(workspace, release(tmp_path, 2))
    assert second["updated"] == ["01_intuition.ipynb"]
    assert "06_rope.ipynb" in second["kept"][0] and "06_rope.course-update.ipynb" in second["kept"][0]
    assert (workspace / "06_rope.ipynb").read_text() == mine
    assert json.loads((workspace / "06_rope.course-update.ipynb").read_text())["version"] == 2
    assert json.loads((workspace / "01_intuition.ipynb").read_text())["version"] == 2

    third = sync(workspace, release(tmp_path, 2))
    assert third["unchanged"] == ["01_intuition.ipynb"] and "course-update" in third["kept"][0]
    assert (workspace / "06_rope.ipynb").read_text() == mine


def test_an_untouched_copy_of_the_current_release_is_just_kept_as_yours(tmp_path):
    workspace = tmp_path / "workspace"
    sync(workspace, release(tmp_path, 1))
    (workspace / "06_rope.ipynb").write_text("edited")
    assert sync(workspace, release(tmp_path, 1))["kept"] == ["06_rope.ipynb (yours)"]
    assert not (workspace / "06_rope.course-update.ipynb").exists()


def test_a_deleted_notebook_comes_back(tmp_path):
    workspace = tmp_path / "workspace"
    sync(workspace, release(tmp_path, 1))
    (workspace / "01_intuition.ipynb").unlink()
    assert sync(workspace, release(tmp_path, 1))["new"] == ["01_intuition.ipynb"]
    assert set(json.loads((workspace / MANIFEST).read_text())) == {"01_intuition", "06_rope"}


def test_every_source_notebook_is_released():
    """The release takes the graded sections' notebooks and the ungraded ones: a notebook folder
    in neither list would never reach a learner."""
    folders = {path.name for path in (ROOT / "source_notebooks").iterdir() if path.is_dir()}
    assert folders == set(NOTEBOOKS.values()) | set(UNGRADED_NOTEBOOKS)
