"""JupyterLab in a subprocess, driven by headless Chromium through Playwright.

Used by tests/test_browser.py. The browser is Debian's ``chromium`` (``CHROMIUM`` below),
never one Playwright downloads. JupyterLab runs from this virtualenv on a free port with a
random token, private settings (no news, every cell kept in the DOM) and
``expose_app_in_browser`` so the page's ``window.jupyterapp`` runs the same commands a
learner's clicks and shortcuts run.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from tests.conftest import without_hidden_tests

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--disable-default-apps", "--disable-extensions", "--mute-audio", "--password-store=basic",
]
SUMMARY = re.compile(r"(\d+) of (\d+) checks pass\.")

# JupyterLab user settings: no news or update checks (no network, no toast over the
# notebook), and every cell rendered so the DOM holds every output.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        {"fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none", "scrollPastEnd": False},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def strip_hidden_tests(source: Path, target: Path) -> Path:
    """The source notebook with solutions minus the hidden grading calls: what a learner with
    the solutions sees."""
    nbformat.write(without_hidden_tests(source), target)
    return target


class JupyterLab:
    """``jupyter lab`` on a free port serving `root`; a context manager that stops it."""

    def __init__(self, root: Path, home: Path, startup_seconds: float = 180):
        self.root, self.home, self.startup_seconds = root, home, startup_seconds
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = home / "jupyterlab.log"
        self.proc = None

    def __enter__(self) -> "JupyterLab":
        settings = self.home / "lab-settings"
        for name, values in LAB_SETTINGS.items():
            (settings / name).parent.mkdir(parents=True, exist_ok=True)
            (settings / name).write_text(json.dumps(values))
        for sub in ("workspaces", "runtime", "config"):
            (self.home / sub).mkdir(exist_ok=True)
        env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(settings),
                   JUPYTERLAB_WORKSPACES_DIR=str(self.home / "workspaces"),
                   JUPYTER_RUNTIME_DIR=str(self.home / "runtime"),
                   JUPYTER_CONFIG_DIR=str(self.home / "config"),  # not the user's ~/.jupyter
                   PYTHONUNBUFFERED="1")
        env.pop("JUPYTER_TOKEN", None)
        jupyter = Path(sys.executable).with_name("jupyter")
        command = [str(jupyter), "lab", "--no-browser", f"--port={self.port}", "--ServerApp.port_retries=0",
                   "--ServerApp.ip=127.0.0.1", f"--ServerApp.token={self.token}",
                   f"--ServerApp.root_dir={self.root}", "--LabApp.expose_app_in_browser=True",
                   "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                   "--LabApp.news_url="]
        if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
            command.append("--allow-root")
        self._log = open(self.log_path, "w")
        # cwd = root: nbgrader's Validate handler reads nbgrader_config.py from the server's cwd,
        # and a learner's workspace has none.
        self.proc = subprocess.Popen(command, cwd=self.root, env=env, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + self.startup_seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=5) as reply:
                    if reply.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        self.__exit__(None, None, None)
        raise RuntimeError(f"jupyter lab did not answer within {self.startup_seconds:.0f} s:\n{self.log()}")

    def log(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                # SIGTERM is jupyter_server's clean stop: it shuts its kernels down first.
                self.proc.terminate()
                try:
                    self.proc.wait(30)
                except subprocess.TimeoutExpired:
                    pass
            try:  # whatever is left in the server's own process group
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.proc.wait(10)
        if getattr(self, "_log", None):
            self._log.close()


def launch_chromium(playwright, profile: Path):
    """Debian's chromium, headless, with a fresh profile (a persistent context on `profile`)."""
    if profile.exists():
        shutil.rmtree(profile)
    return playwright.chromium.launch_persistent_context(
        str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
        viewport={"width": 1280, "height": 900}, device_scale_factor=1, timeout=120_000)


# --- the page side -------------------------------------------------------------------------

_OPEN = """async (path) => {
  const app = window.jupyterapp;
  const panel = await app.commands.execute('docmanager:open',
      {path, factory: 'Notebook', kernel: {name: 'python3'}});
  await panel.context.ready;
  await panel.sessionContext.ready;
  app.shell.activateById(panel.id);
  if (app.shell.collapseLeft) app.shell.collapseLeft();
  if (app.shell.collapseRight) app.shell.collapseRight();
  window.__nb = {panel, done: false, error: null, cell: -1};
  return panel.content.widgets.length;
}"""

# Run every code cell in order. 'all' is the Run All command (it stops at the first error,
# as it does for a learner); 'each' runs the cells one by one like Shift+Enter, so an
# unfinished exercise does not stop the cells after it.
_RUN = """(mode) => {
  const app = window.jupyterapp, state = window.__nb, nb = state.panel.content;
  const run = async () => {
    if (mode === 'all') {
      await app.commands.execute('notebook:run-all-cells');
    } else {
      for (let i = 0; i < nb.widgets.length; i++) {
        if (nb.widgets[i].model.type !== 'code') continue;
        state.cell = i;
        nb.activeCellIndex = i;
        nb.deselectAll();
        await app.commands.execute('notebook:run-cell');
      }
    }
  };
  run().then(() => { state.done = true; }, (e) => { state.error = String(e); state.done = true; });
}"""

_IDLE = """() => {
  const s = window.__nb;
  if (!s.done) return false;
  const kernel = s.panel.sessionContext.session && s.panel.sessionContext.session.kernel;
  if (!kernel || kernel.status !== 'idle') return false;
  const imgs = [...s.panel.node.querySelectorAll('.jp-OutputArea-output img')];
  return imgs.every((im) => im.complete);
}"""

_COLLECT = """() => {
  const nb = window.__nb.panel.content;
  const STDERR = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]';
  return nb.widgets.map((cell, index) => {
    const out = {index, type: cell.model.type, source: cell.model.sharedModel.getSource()};
    if (out.type !== 'code') return out;
    out.count = cell.model.executionCount;
    out.stderr = [...cell.node.querySelectorAll(STDERR)].map((e) => e.innerText);
    out.images = [...cell.node.querySelectorAll('.jp-OutputArea-output img')].map(
        (im) => ({w: im.naturalWidth, h: im.naturalHeight, shownW: im.clientWidth, shownH: im.clientHeight}));
    out.text = [...cell.node.querySelectorAll('.jp-OutputArea-output')].map((e) => e.innerText).join('\\n');
    out.outputs = cell.model.outputs.toJSON().map((o) => ({
        type: o.output_type, ename: o.ename || null, evalue: o.evalue || null, name: o.name || null,
        mimes: Object.keys(o.data || {})}));
    return out;
  });
}"""

_CLOSE = """async () => {
  const s = window.__nb;
  if (!s) return;
  await s.panel.sessionContext.shutdown();
  s.panel.context.model.dirty = false;
  s.panel.dispose();
  window.__nb = null;
}"""


@dataclass
class NotebookRun:
    path: str
    seconds: float
    cells: list = field(default_factory=list)
    run_error: str | None = None
    screenshots: list = field(default_factory=list)
    dialogs: list = field(default_factory=list)
    page_errors: list = field(default_factory=list)

    @property
    def code_cells(self):
        return [c for c in self.cells if c["type"] == "code"]

    def unexecuted(self) -> list[int]:
        return [c["index"] for c in self.code_cells if c["source"].strip() and c["count"] is None]

    def errors(self) -> list[tuple[int, str, str]]:
        """(cell, ename, evalue) for every error output in the model."""
        return [(c["index"], o["ename"], o["evalue"]) for c in self.code_cells for o in c["outputs"]
                if o["type"] == "error"]

    def stderr_streams(self) -> list[tuple[int, str]]:
        """Text of the stderr-looking output areas in the DOM that are not tracebacks."""
        found = []
        for c in self.code_cells:
            n_errors = sum(o["type"] == "error" for o in c["outputs"])
            n_streams = sum(o["type"] == "stream" and o["name"] == "stderr" for o in c["outputs"])
            if n_streams:
                found.extend((c["index"], text[-500:]) for text in c["stderr"][:n_streams + n_errors])
            elif len(c["stderr"]) != n_errors:
                found.append((c["index"], f"{len(c['stderr'])} stderr areas in the page for {n_errors} errors"))
        return found

    def shown_tracebacks(self) -> list[tuple[int, str]]:
        """The last line of each traceback as the page shows it."""
        shown = []
        for c in self.code_cells:
            if any(o["type"] == "error" for o in c["outputs"]):
                for text in c["stderr"]:
                    lines = [line for line in text.strip().splitlines() if line.strip()]
                    shown.append((c["index"], lines[-1] if lines else ""))
        return shown

    def images(self) -> list[dict]:
        return [dict(im, cell=c["index"]) for c in self.code_cells for im in c["images"]]

    def figures_beside_errors(self) -> list[int]:
        """Cells that raised and still show a figure: an empty or half-drawn plot under a traceback."""
        return [c["index"] for c in self.code_cells
                if c["images"] and any(o["type"] == "error" for o in c["outputs"])]

    def image_outputs(self) -> int:
        return sum(any(m.startswith("image/") for m in o["mimes"]) for c in self.code_cells for o in c["outputs"])

    def summaries(self) -> list[tuple[int, int]]:
        text = "\n".join(c.get("text", "") for c in self.code_cells)
        return [(int(a), int(b)) for a, b in SUMMARY.findall(text)]

    def where(self, index: int) -> str:
        lines = [line for line in self.cells[index]["source"].splitlines() if line.strip()]
        return f"cell {index} ({lines[0][:70] if lines else 'empty'!r})"


def close_notebook(page) -> None:
    """Shut the notebook's kernel down and close its tab without saving (best effort: this runs
    in `finally` blocks and must not hide the error that got us there)."""
    try:
        page.evaluate(_CLOSE)
    except Exception as err:  # noqa: BLE001
        print(f"could not close the notebook: {err}")


def run_notebook(page, lab: JupyterLab, path: str, mode: str, screenshot: Path | None,
                 timeout_s: float = 600) -> NotebookRun:
    """Open `path` (relative to the server root), run its cells ('all' or 'each'), collect what
    the page shows. The notebook stays open: call close_notebook()."""
    start = time.monotonic()
    page.evaluate(_OPEN, path)
    page.evaluate(_RUN, mode)
    try:
        page.wait_for_function(_IDLE, timeout=timeout_s * 1000, polling=250)
    except Exception as err:  # noqa: BLE001 - say where it hung
        cell = page.evaluate("() => window.__nb.cell")
        raise AssertionError(f"{path}: cells still running after {timeout_s:.0f} s (at cell {cell})\n"
                             f"{lab.log(2000)}") from err
    run = NotebookRun(path, time.monotonic() - start)
    run.run_error = page.evaluate("() => window.__nb.error")
    run.cells = page.evaluate(_COLLECT)
    run.dialogs = page.locator(".jp-Dialog").all_inner_texts()
    if screenshot is not None:
        run.screenshots = take_screenshots(page, screenshot)
    return run


_SCROLLER = """() => {
  const nb = window.__nb.panel.content.node;
  return nb.querySelector('.jp-WindowedPanel-outer') || nb;
}"""


def take_screenshots(page, stem: Path, tile: int = 8000) -> list[Path]:
    """The whole notebook as a person sees it, top to bottom: ``stem.png`` when it fits in one
    tall image, else ``stem-1.png``, ``stem-2.png``, ... (each at most `tile` pixels of notebook)."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    scroller = page.evaluate_handle(_SCROLLER)
    page.evaluate("""() => { const nb = window.__nb.panel.content; nb.deselectAll(); nb.activeCellIndex = 0; }""")
    height, chrome = scroller.evaluate("(s) => [s.scrollHeight, window.innerHeight - s.clientHeight]")
    page.set_viewport_size({"width": size["width"], "height": int(max(min(height, tile) + chrome, size["height"]))})
    paths = []
    try:
        page.wait_for_timeout(300)
        height, view = scroller.evaluate("(s) => [s.scrollHeight, s.clientHeight]")
        tiles = max(1, -(-height // view))
        for k in range(tiles):
            scroller.evaluate("(s, top) => { s.scrollTop = top; }", k * view)
            page.wait_for_timeout(200)
            path = stem.with_name(f"{stem.name}.png" if tiles == 1 else f"{stem.name}-{k + 1}.png")
            page.screenshot(path=str(path))
            paths.append(path)
    finally:
        page.set_viewport_size(size)
    return paths


def click_validate(page, path: str, timeout_s: float = 300) -> tuple[str, str]:
    """Open `path`, press nbgrader's Validate toolbar button, return (dialog title, body text)."""
    page.evaluate(_OPEN, path)
    button = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .validate-button jp-button, "
                          ".jp-NotebookPanel:not(.lm-mod-hidden) .validate-button button").first
    button.wait_for(state="visible", timeout=60_000)
    button.click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(state="visible", timeout=timeout_s * 1000)
    title = dialog.locator(".jp-Dialog-header").inner_text()
    body = dialog.locator(".jp-Dialog-body").inner_text()
    return title, body
