# section: zoo; breaks: zoo.diagnosis
# diagnosis() returns a mapping that is no dict: its items() holds a 3 MB "key", keys that are
# not strings, letters that repeat and entries that are not pairs, and its __eq__, __str__ and
# __len__ lie. Only the learner's own answer can be forged this way: a wrong answer scores as
# one, and the feedback stays short.
_real = diagnosis


class _Lying(dict):
    def items(self):
        return [("A", "none"), ("B", 12), ("C", None), ("A", "x" * 3_000_000), ("D", ["t5-sign-flipped"])]

    def __eq__(self, other):
        return True

    def __str__(self):
        return str(_real())

    def __len__(self):
        return 10 ** 9


def diagnosis():
    return _Lying(_real())
