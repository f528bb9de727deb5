"""What a learner process costs: CPU seconds to run the eight solution notebooks' cells, each in
a process forked from a warm parent, as course.sandbox.fork_server does. Prints figures only.

    python benchmarks/bench_learner_fork.py [--repeat 2]

Variants (each in a fresh parent process):
  fork server as is  the parent runs course.sandbox.fork_server._preload(), then forks
  + first-use warm   the parent also runs autograd, an optimizer step and a matplotlib figure
                     once (costs the notebooks pay again in every forked child otherwise)
  + gc.freeze        ... and freezes its heap before forking, so the children's garbage
                     collector does not walk (and copy-on-write) the inherited objects
  child gc.freeze    as is, but each child freezes the inherited heap first thing

Most of a full submission's grading time is spent in these processes (see bench_grading.py's
breakdown); the last two variants are changes for course/sandbox/fork_server.py to consider.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def first_use_warm() -> None:
    import matplotlib.pyplot as plt
    import torch
    import torch.nn.functional as F

    model = torch.nn.Linear(4, 4)
    for optimizer in (torch.optim.SGD(model.parameters(), lr=0.1), torch.optim.Adam(model.parameters())):
        loss = F.softmax(model(torch.randn(2, 4)), -1).sum()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    fig, axes = plt.subplots(1, 2, figsize=(4, 3), layout="constrained")
    axes[0].plot([0, 1], label="a")
    axes[0].legend()
    fig.colorbar(axes[1].imshow(torch.rand(3, 3)), ax=axes[1])
    axes[0].set_title("$x$")
    fig.canvas.draw()
    plt.close("all")


def parent(variant: str) -> None:
    """Runs in a fresh process: prepare like the fork server, then fork one child per notebook."""
    import gc

    from course.sandbox.fork_server import _preload

    os.environ["COURSE_SANDBOX"] = "1"
    _preload()
    if variant in ("warm", "warm+freeze"):
        first_use_warm()
    if variant == "warm+freeze":
        gc.collect()
        gc.freeze()
    from course.grading.submission import read_submission

    notebooks = sorted((ROOT / "source_notebooks").glob("*/*.ipynb"))
    submissions = [read_submission(p) for p in notebooks]
    results = {}
    for path, submission in zip(notebooks, submissions):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            import builtins

            from course.sandbox import child

            if variant == "child-freeze":
                import gc

                gc.freeze()  # in the child, right after the fork (what a grader can ask for per process)
            child._NAMESPACE.update({"__name__": "__main__", "__builtins__": builtins})
            builtins.get_ipython = lambda: child._FakeIPython(child._NAMESPACE)
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                for label, code in submission.cells:
                    try:
                        child.run_cell(label, code)
                    except BaseException:  # noqa: BLE001 - as the sandbox does: go on
                        pass
            times = os.times()
            os.write(write, json.dumps(times.user + times.system).encode())
            os._exit(0)
        os.close(write)
        with os.fdopen(read) as pipe:
            results[path.stem] = float(pipe.read() or "nan")
        os.waitpid(pid, 0)
    print(json.dumps(results))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.variant:
        parent(args.variant)
        return 0
    print(f"CPU seconds of the learner processes for the 8 solution notebooks (load {os.getloadavg()[0]:.1f})")
    for _ in range(args.repeat):
        for variant, label in (("as-is", "fork server as is"), ("warm", "+ first-use warm"),
                               ("warm+freeze", "+ first-use warm + gc.freeze"),
                               ("child-freeze", "gc.freeze in each child")):
            t0 = time.monotonic()
            done = subprocess.run([sys.executable, __file__, "--variant", variant], capture_output=True, text=True,
                                  cwd=ROOT)
            if done.returncode:
                print(f"  {label}: failed\n{done.stderr[-1500:]}")
                continue
            per = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"  {label:<30} {sum(per.values()):6.2f} s   (" +
                  ", ".join(f"{k.split('_')[0]} {v:.2f}" for k, v in per.items()) +
                  f")   [load {os.getloadavg()[0]:.1f}, {time.monotonic() - t0:.0f} s wall in all]", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
