"""Probe any model's position handling: ``python -m course.probe TARGET``.

TARGET is ``--hf ARCH`` (a tiny random transformers model, built locally), ``--lab TASK:SCHEME``
(a cached model of the extrapolation lab) or ``path/to/file.py:factory`` (your own model, run
in the course's sandbox). Modules: ``targets`` (handles around each kind of model),
``factory`` (file.py:factory through the sandbox), ``checks`` (probes 1-5: shift, cache,
padding, RoPE norms, ALiBi slopes), ``lengths`` (6-7: past the trained length, passkey),
``report`` (text, JSON, figures).
"""
from __future__ import annotations

from course.probe import checks, lengths
from course.probe.report import FAIL, NA, PASS, Result
from course.probe.targets import Unusable

PROBES = {**checks.PROBES, **lengths.PROBES}


def run(handle, only=None) -> list[Result]:
    """Every probe (or those named in `only`) on `handle`; a probe whose model call raises fails."""
    results = []
    for name, probe in PROBES.items():
        if only and name not in only:
            continue
        try:
            results.append(probe(handle))
        except Unusable as err:
            results.append(Result(name, name, FAIL, f"the model's answer cannot be used: {err}"))
        except Exception as err:  # noqa: BLE001 - the model's error is the finding
            results.append(Result(name, name, FAIL, f"the model raised {type(err).__name__}: {str(err)[:200]}"))
    return results


__all__ = ["FAIL", "NA", "PASS", "PROBES", "Result", "run"]
