# section: rope; breaks: rope.rope_matrix
# A graded function that asks for every core of the machine (a pinned batch worker's learner
# would then take the other workers' cores), and says which cores it may run on afterwards.
import json as _json
import os as _os


def rope_matrix(position, d, base=10000.0, interleaved=False):
    try:
        _os.sched_setaffinity(0, range(_os.cpu_count()))
        asked = "ok"
    except OSError as err:
        asked = type(err).__name__
    with open("/proc/self/status") as status:
        cores = next(line.split(":", 1)[1].strip() for line in status if line.startswith("Cpus_allowed_list"))
    raise RuntimeError("AFFINITY " + _json.dumps({"asked": asked, "cores": cores}))
