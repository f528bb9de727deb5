"""python -m course.probe TARGET [--format text|json] [--figures DIR] [--only PROBE ...]

TARGET: --hf ARCH (tiny random transformers model), --lab TASK:SCHEME (a cached lab model),
--zoo LETTER (a specimen of notebook 11's bug zoo) or path/to/file.py:factory (your model, run in the sandbox; --in-process to skip it).
Exit status: 0 when the probes ran (whatever they found), 2 when the target could not be loaded.
"""
from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    from course.probe.targets import hf_architectures

    parser = argparse.ArgumentParser(prog="python -m course.probe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", nargs="?", help="path/to/file.py:factory returning an nn.Module")
    parser.add_argument("--hf", metavar="ARCH", help=f"a tiny random transformers model: {', '.join(hf_architectures())}")
    parser.add_argument("--lab", metavar="TASK:SCHEME", help="a trained model of the lab's cache, e.g. recall:rope")
    parser.add_argument("--zoo", metavar="LETTER", help="a specimen of the bug zoo (notebook 11), e.g. A")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--figures", metavar="DIR", help="write one PNG per probe into DIR")
    parser.add_argument("--only", action="append", metavar="PROBE", help="run only this probe (repeatable)")
    parser.add_argument("--in-process", action="store_true",
                        help="run file.py:factory in this process, NOT sandboxed (trusted code only)")
    args = parser.parse_args(argv)
    if sum(x is not None for x in (args.target, args.hf, args.lab, args.zoo)) != 1:
        parser.error("give exactly one target: file.py:factory, --hf ARCH, --lab TASK:SCHEME or --zoo LETTER")

    from course.probe import PROBES, report, run
    from course.probe.targets import MissingExtra, hf_handle, lab_handle

    if args.only and set(args.only) - set(PROBES):
        parser.error(f"--only takes {', '.join(PROBES)}")
    try:
        if args.hf:
            handle = hf_handle(args.hf)
        elif args.lab:
            handle = lab_handle(args.lab)
        elif args.zoo:
            from course.probe.factory import zoo_handle
            handle = zoo_handle(args.zoo)
        else:
            from course.probe.factory import factory_handle
            handle = factory_handle(args.target, in_process=args.in_process)
    except (MissingExtra, ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"python -m course.probe: {err}", file=sys.stderr)
        return 2
    try:
        results = run(handle, args.only)
    finally:
        handle.close()
    target = {"name": handle.name, "scheme": handle.scheme, "train_len": handle.train_len, "trained": handle.trained,
              "sandboxed": handle.sandboxed, "accepts": sorted(handle.accepts), "notes": handle.notes}
    if args.figures:
        stem = handle.name.replace(":", "_").replace("/", "_").replace(".py", "")
        report.write_figures(results, args.figures, stem)
    print(report.as_json(target, results) if args.format == "json" else report.as_text(target, results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
