"""`python -m course.grade` reuses this user's warm grader (course.grading.daemon): the second call
is answered by it, with exactly what grading in-process prints; a dead, slow or refused server
costs only the seconds of grading in-process. Real commands, servers and learner processes
throughout; every test stops the servers it started and checks none is left.
"""
import importlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from course.grading import daemon
from course.sandbox.reaper import processes

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
HANG = "import torch\n\ndef rope_inv_freq(d, base=10000.0):\n    while True:\n        pass\n"
READY_SECONDS = 240.0  # a server's warm-up on a loaded two-core machine

pytestmark = pytest.mark.xdist_group("grade_daemon")  # one after the other: each test starts servers


def alive(pid) -> bool:
    """Running (a zombie waiting for its parent counts as gone)."""
    state = processes().get(pid)
    return pid is not None and state is not None and state[1] not in "ZX"


class Servers:
    """This test's private server folder, its commands, and every server (and fork server) seen."""

    def __init__(self, folder: Path, **env):
        self.folder = folder
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("COURSE_GRADE_DAEMON")}
        self.env.update({daemon.DIR_ENV: str(folder), daemon.IDLE_ENV: "120", daemon.DEBUG_ENV: "1", **env})
        self.seen: set[int] = set()
        self.started: list[subprocess.Popen] = []

    def grade(self, *args, warm=True, python=(), timeout=300) -> subprocess.CompletedProcess:
        switch = ["--daemon"] if warm else ["--no-daemon"]
        done = subprocess.run([sys.executable, *python, "-m", "course.grade", *switch, *map(str, args)], cwd=ROOT,
                              env=self.env, capture_output=True, text=True, timeout=timeout)
        self.remember()
        return done

    def fingerprint(self) -> str:
        suites = self.env.get("COURSE_GRADER_TESTS")
        return daemon.fingerprint(suites=Path(suites) if suites else None)

    def files(self) -> dict[str, Path]:
        return daemon.files_of(self.folder, self.fingerprint())

    def start(self) -> int:
        """A server started directly (as a first call would, without grading first); its pid once ready."""
        with open(self.folder / "test-server.log", "ab") as log:
            self.started.append(subprocess.Popen(
                [sys.executable, "-m", "course.grading.daemon", "--dir", str(self.folder),
                 "--fingerprint", self.fingerprint()], cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=log, start_new_session=True))
        return self.ready()["pid"]

    def status(self) -> dict:
        return daemon._ask(self.files()["sock"], {"op": "status", "protocol": daemon.PROTOCOL}, 30.0)

    def ready(self) -> dict:
        """The status of the server for this code, once it answers (fails at once if none is starting)."""
        deadline, nobody = time.monotonic() + READY_SECONDS, None
        while True:
            self.remember()
            try:
                return self.status()
            except (OSError, ValueError):
                lock = daemon._take_lock(self.files()["lock"])
                if lock is not None:  # no server holds it: none is starting
                    os.close(lock)
                    nobody = nobody or time.monotonic()
                    logs = "".join(p.read_text() for p in self.folder.glob("*.log"))
                    assert time.monotonic() - nobody < 15.0, f"no server is starting (code edited meanwhile?): {logs}"
                else:
                    nobody = None
                assert time.monotonic() < deadline, "the server did not get ready"
                time.sleep(0.2)

    def remember(self) -> dict:
        """The pid file's server and fork server (kept for the final check)."""
        try:
            info = json.loads(self.files()["pid"].read_text())
        except (OSError, ValueError):
            return {}
        self.seen |= {p for p in (info.get("pid"), info.get("zygote")) if p}
        return info

    def wait_gone(self, pids, seconds=30.0) -> list[int]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and any(alive(p) for p in pids):
            for proc in self.started:
                proc.poll()
            time.sleep(0.1)
        return [p for p in pids if alive(p)]

    def close(self) -> None:
        """--stop-daemon, then SIGKILL whatever is left; no server nor fork server may remain."""
        self.remember()
        subprocess.run([sys.executable, "-m", "course.grade", "--stop-daemon"], cwd=ROOT, env=self.env,
                       capture_output=True, timeout=60)
        left = self.wait_gone(self.seen, 10.0)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
        assert not self.wait_gone(self.seen, 10.0), f"left running: {left}"
        assert not left, f"--stop-daemon left {left} running"


@pytest.fixture
def servers():
    folder = Path(tempfile.mkdtemp(prefix="cgd-"))  # short: a socket's path has at most 107 bytes
    made = Servers(folder)
    yield made
    try:
        made.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def with_bug(section: str, bug_id: str) -> str:
    bug = next(b for b in importlib.import_module(f"tests.bank.{section}").BUGS if b.id == bug_id)
    return (ROOT / "solutions" / f"{section}.py").read_text() + "\n\n# --- the mistake ---\n" + bug.code


def submissions(tmp: Path) -> dict[str, list]:
    """name -> command-line arguments (paths relative to the repository, as a person types them)."""
    (tmp / "bug.py").write_text(with_bug("rope", "apply_swapped_conventions"))
    (tmp / "hang.py").write_text(HANG)
    (tmp / "syntax.py").write_text("def apply_rope(x:\n    return x\n")
    (tmp / "folder").mkdir()
    shutil.copy(ROOT / "solutions" / "rope.py", tmp / "folder" / "06_rope.py")
    (tmp / "folder" / "07_alibi.py").write_text(with_bug("alibi", "slopes_power_of_two_formula"))
    return {
        "rope": ["solutions/rope.py", "--format", "json"],
        "rope as text": ["solutions/rope.py"],
        "bank mistake": [tmp / "bug.py", "--format", "json"],
        "hanging function": [tmp / "hang.py", "--only", "rope.rope_inv_freq", "--call-seconds", "2",
                             "--format", "json"],
        "syntax error": [tmp / "syntax.py", "--format", "json"],
        "folder of two files": [tmp / "folder", "--format", "json"],
        "only": ["solutions/rope.py", "--only", "rope.apply_rope", "--only", "rope.rope_matrix", "--format", "json"],
        "adapter": [os.path.relpath(EXAMPLES / "model_rope.py", ROOT), "--adapter",
                    os.path.relpath(EXAMPLES / "model_rope_adapter.py", ROOT), "--format", "json"],
        "missing file": ["no/such/file.py", "--format", "json"],
    }


def test_later_calls_are_answered_by_the_warm_grader_with_the_same_output(servers, tmp_path):
    cases = submissions(tmp_path)
    first = servers.grade(*cases["rope"])  # no server yet: graded here, one started for the next call
    assert first.returncode == 0 and "started a warm grader" in first.stderr, first.stderr
    assert json.loads(first.stdout)["score"] == json.loads(first.stdout)["max_score"] == 16
    pid = servers.ready()["pid"]
    requests = 0
    for name, args in cases.items():
        warm, cold = servers.grade(*args), servers.grade(*args, warm=False)
        assert (warm.returncode, warm.stdout) == (cold.returncode, cold.stdout), name
        assert "warm grader" not in cold.stderr
        if name == "missing file":  # its report names the path as typed: graded here
            assert "graded by the warm grader" not in warm.stderr
            continue
        requests += 1
        assert f"graded by the warm grader pid {pid} (request {requests})" in warm.stderr, (name, warm.stderr)
    assert servers.status() == {"ok": True, "pid": pid, "requests": requests, "fingerprint": servers.fingerprint()}
    # the client loads neither torch nor pytest nor the grader, and starts no fork server
    timed = servers.grade(*cases["rope"], python=("-X", "importtime"))
    assert f"graded by the warm grader pid {pid}" in timed.stderr
    imported = {line.split("|")[-1].strip() for line in timed.stderr.splitlines() if line.startswith("import time:")}
    assert "course.grading.daemon" in imported
    assert not {m for m in imported if m.split(".")[0] in ("torch", "pytest", "numpy")}
    assert not {"course.grading.grader", "course.sandbox.zygote"} & imported


def test_limits_are_those_of_each_request(servers, tmp_path):
    (tmp_path / "hang.py").write_text(HANG)
    pid = servers.start()
    for seconds in (1, 3):
        done = servers.grade(tmp_path / "hang.py", "--only", "rope.rope_inv_freq", "--call-seconds", seconds,
                             "--format", "json")
        assert f"graded by the warm grader pid {pid}" in done.stderr
        feedback = json.loads(done.stdout)["exercises"][0]["feedback"]
        assert f"did not finish within {seconds} s" in feedback, feedback


def test_a_server_killed_mid_request_costs_only_time(servers, tmp_path):
    (tmp_path / "hang.py").write_text(HANG)
    args = [tmp_path / "hang.py", "--only", "rope.rope_inv_freq", "--call-seconds", "2", "--format", "json"]
    pid = servers.start()
    zygote = servers.remember()["zygote"]
    client = subprocess.Popen([sys.executable, "-m", "course.grade", "--daemon", *map(str, args)], cwd=ROOT,
                              env=servers.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3.0)  # mid-request: its first call hangs for 2 s, then three more
    os.kill(pid, signal.SIGKILL)
    out, err = client.communicate(timeout=300)
    assert client.returncode == 0, err
    assert "warm grader failed" in err and "graded by the warm grader" not in err
    assert out == servers.grade(*args, warm=False).stdout
    assert not servers.wait_gone([pid, zygote]), "the fork server outlived its grader"
    # its socket is left behind, stale: the next call cleans it up and starts another server
    assert servers.files()["sock"].exists()
    again = servers.grade("solutions/rope.py", "--only", "rope.rope_inv_freq")
    assert "started a warm grader" in again.stderr, again.stderr
    assert servers.ready()["pid"] != pid


def test_a_stale_socket_is_removed_when_a_server_starts(servers):
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(servers.files()["sock"]))
    stale.close()  # the file stays, nobody listens
    done = servers.grade("solutions/rope.py", "--only", "rope.rope_inv_freq")
    assert done.returncode == 0 and "started a warm grader" in done.stderr, done.stderr
    assert servers.ready()["requests"] == 0


def test_the_fingerprint_follows_the_code(tmp_path):
    package, suites = tmp_path / "course", tmp_path / "grader_tests"
    for path, text in {package / "a.py": "x = 1\n", package / "sub" / "data.json": "{}", package / "notes.txt": "",
                       suites / "test_a.py": "", suites / "conftest.py": ""}.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    base = daemon.fingerprint(package, suites)
    assert daemon.fingerprint(package, suites) == base
    (package / "notes.txt").write_text("not code")
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "a.py").write_text("")
    assert daemon.fingerprint(package, suites) == base
    changes = [
        lambda: os.utime(package / "a.py", ns=(1, os.stat(package / "a.py").st_mtime_ns + 1000)),
        lambda: (package / "sub" / "data.json").write_text('{"a": 1}'),
        lambda: (suites / "test_b.py").write_text(""),
        lambda: (package / "sub" / "b.py").write_text(""),
    ]
    seen = {base}
    for change in changes:
        change()
        now = daemon.fingerprint(package, suites)
        assert now not in seen
        seen.add(now)
    copy = tmp_path / "checkout2" / "course"
    shutil.copytree(package, copy, copy_function=shutil.copy2)
    assert daemon.fingerprint(copy, suites) not in seen  # another checkout, even with the same files


def test_a_server_leaves_when_the_suites_change(servers, tmp_path):
    suites = tmp_path / "grader_tests"
    shutil.copytree(ROOT / "grader_tests", suites, ignore=shutil.ignore_patterns("__pycache__"))
    servers.env["COURSE_GRADER_TESTS"] = str(suites)
    pid = servers.start()
    zygote = servers.remember()["zygote"]
    files = servers.files()
    os.utime(suites / "test_rope.py", ns=(1, os.stat(suites / "test_rope.py").st_mtime_ns + 1000))  # an edited suite
    assert not servers.wait_gone([pid, zygote], 60.0)
    assert not files["sock"].exists() and not files["pid"].exists()


@pytest.mark.parametrize("mode", [0o777, 0o750])
def test_a_folder_others_may_use_is_refused(servers, mode):
    servers.folder.chmod(mode)
    done = servers.grade("solutions/rope.py", "--only", "rope.rope_inv_freq")
    assert done.returncode == 0 and "Total: 1 / 1" in done.stdout
    assert "not a private folder" in done.stderr and "warm grader" not in done.stderr
    assert not list(servers.folder.iterdir())  # no socket, no server started
    servers.folder.chmod(0o700)


def test_only_the_users_own_real_folder_is_private(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o700)
    mine.chmod(0o700)
    assert daemon.private(mine)
    (tmp_path / "link").symlink_to(mine)
    assert not daemon.private(tmp_path / "link")
    if os.getuid() == 0:  # a folder owned by another user
        other = tmp_path / "other"
        other.mkdir(mode=0o700)
        os.chown(other, 65534, 65534)
        assert not daemon.private(other)


def test_an_idle_server_leaves_and_removes_its_socket(servers):
    servers.env[daemon.IDLE_ENV] = "2"
    pid = servers.start()
    zygote = servers.remember()["zygote"]
    files = servers.files()
    assert not servers.wait_gone([pid, zygote], 60.0)
    assert not files["sock"].exists() and not files["pid"].exists()


def test_stop_daemon_stops_it(servers):
    pid = servers.start()
    zygote = servers.remember()["zygote"]
    stop = [sys.executable, "-m", "course.grade", "--stop-daemon"]
    done = subprocess.run(stop, cwd=ROOT, env=servers.env, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == f"stopped the warm grader (pid {pid})"
    assert not servers.wait_gone([pid, zygote], 10.0)
    assert not servers.files()["sock"].exists()
    again = subprocess.run(stop, cwd=ROOT, env=servers.env, capture_output=True, text=True, timeout=60)
    assert again.stdout.strip() == "no warm grader was running"


def test_a_server_that_does_not_answer_in_time_is_told_to_stop(monkeypatch):
    """The client gives up after the submission's limits plus a margin, grades in-process (None here),
    and tells the stuck server to stop: it would compete with that grading and delay later calls."""
    folder = Path(tempfile.mkdtemp(prefix="cgd-"))  # short: a socket's path has at most 107 bytes
    monkeypatch.setenv(daemon.DIR_ENV, str(folder))
    monkeypatch.setattr(daemon, "MARGIN_SECONDS", 1.0)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(daemon.files_of(folder, daemon.fingerprint())["sock"]))
    listener.listen(4)
    requests = []

    def stuck_server():
        held = []
        for _ in range(2):
            conn, _ = listener.accept()
            requests.append(json.loads(conn.makefile().readline()))
            held.append(conn)  # never answers
    thread = threading.Thread(target=stuck_server, daemon=True)
    thread.start()
    limits = daemon.Limits(submission_seconds=1.0)
    assert daemon.grade_remotely([str(ROOT / "solutions" / "rope.py")], limits=limits) is None
    thread.join(10)
    listener.close()
    shutil.rmtree(folder, ignore_errors=True)
    assert [r["op"] for r in requests] == ["grade", "stop"]
