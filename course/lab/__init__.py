"""The extrapolation lab (notebook 09): train tiny decoders with each position scheme at a
short length and test them up to 8 times longer.

    from course import lab
    results = lab.run_all(retrain=False)   # cached JSON, every seed; trains only what is missing

Modules: ``model`` (the transformer and every scheme), ``tasks`` (recall in noise, the
passkey probe, a character corpus from the standard library), ``training``,
``evaluation``, ``cache`` (JSON results in ``results/``, the trained weights of the same
runs in ``weights/``), ``plots``, ``anatomy`` (what the trained heads and tables do) and
``plug`` (the trained models run with the learner's own functions).
"""
from course.lab.cache import SEEDS, SHIPPED_SEED, VARIANTS, load_model, load_results, missing, run, run_all
from course.lab.evaluation import DEPTHS, MULTIPLES
from course.lab.model import ROPE_SCALINGS, SCHEMES, ModelConfig, TinyDecoder
from course.lab.training import TASKS, TrainConfig, train

__all__ = ["DEPTHS", "MULTIPLES", "ROPE_SCALINGS", "SCHEMES", "SEEDS", "SHIPPED_SEED", "TASKS", "VARIANTS",
           "ModelConfig", "TinyDecoder", "TrainConfig", "load_model", "load_results", "missing", "run", "run_all", "train"]
