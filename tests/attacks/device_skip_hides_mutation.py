# section: setup; breaks: setup.position_ids_from_mask
# position_ids_from_mask zeroes the mask it is given (an in-place change) and raises on the
# emulated second device, where an error that is not a device mistake makes the device check
# "not run". The check for in-place changes must still run and fail: it may not sit after the
# device check in the same test (tests/test_device_checks.py).

_solution_position_ids_from_mask = position_ids_from_mask


def position_ids_from_mask(attention_mask):
    if attention_mask.device.type == "meta":
        raise RuntimeError("this build does not run on the emulated device")
    ids = _solution_position_ids_from_mask(attention_mask)
    attention_mask.zero_()
    return ids
