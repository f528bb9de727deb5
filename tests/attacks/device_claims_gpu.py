# section: setup; breaks: setup.relative_positions
# relative_positions computes on the CPU whatever device its inputs are on (a device mistake),
# and the learner's process answers the grader's device check by itself: it claims a GPU, runs
# the function on the CPU and reports every result on 'cuda'. Which second device is used, and
# whether it is emulated, is the grader's to decide, never this process's word. (Every device
# check of the section sees the forged answers, and fails.)
import course.sandbox.second_device as _second_device

_solution_relative_positions = relative_positions


def relative_positions(q_pos, k_pos):
    return _solution_relative_positions(q_pos.cpu(), k_pos.cpu())


def _claim_a_gpu(fn, args, kwargs):
    result = fn(*args, **kwargs)
    return {"device": "cuda", "emulated": False, "devices": ["cuda"], "result": result}


_second_device.call_on_second_device = _claim_a_gpu
_second_device.second_device = lambda: {"device": "cuda", "emulated": False}
