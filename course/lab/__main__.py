"""``python -m course.lab [--retrain | --reevaluate] [--task recall|chars] [--scheme NAME ...] [--seed N ...]``:
fill the cache."""
import argparse

from course.lab.cache import RESULTS_DIR, SEEDS, reevaluate, run_all
from course.lab.model import SCHEMES
from course.lab.training import TASKS


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m course.lab", description=__doc__)
    parser.add_argument("--retrain", action="store_true", help="train again even if a result is cached")
    parser.add_argument("--task", choices=TASKS, action="append", help="only this task (repeatable)")
    parser.add_argument("--scheme", choices=SCHEMES, action="append", help="only this scheme (repeatable)")
    parser.add_argument("--seed", type=int, choices=SEEDS, action="append", help="only this seed (repeatable)")
    parser.add_argument("--reevaluate", action="store_true",
                        help="evaluate cached runs again from their saved weights, without training")
    args = parser.parse_args(argv)
    if args.reevaluate:
        for seed in args.seed or SEEDS:
            for task in args.task or TASKS:
                for scheme in args.scheme or SCHEMES:
                    record = reevaluate(task, scheme, progress=True, seed=seed)
                    print(f"{task:>6} {scheme:<10} seed {seed} evaluated again in "
                          f"{record['info']['eval_cpu_seconds']:>6.1f} CPU s")
        return
    results = run_all(retrain=args.retrain, tasks=args.task or TASKS, schemes=args.scheme or SCHEMES,
                      seeds=args.seed or SEEDS)
    for (task, scheme, seed), record in sorted(results["runs"].items()):
        print(f"{task:>6} {scheme:<10} seed {seed} trained in {record['info']['train_cpu_seconds']:>6.1f} CPU s")
    print(f"results in {RESULTS_DIR}")


if __name__ == "__main__":
    main()
