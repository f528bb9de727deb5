"""Signatures of the learner's names, as the learner's process reports them, and whether a call fits.

The reply comes from code the learner controls: it is read as data of a fixed shape (names,
parameter kinds, flags), capped, and anything else in it is dropped, never trusted or evaluated.
A convention declares the calls it makes of each name (`Call`, `ClassCall`); it is chosen only
when every required name's reported parameters can take those calls.
"""
from __future__ import annotations

from dataclasses import dataclass

KINDS = ("positional_only", "positional_or_keyword", "var_positional", "keyword_only", "var_keyword")
NAME_KINDS = ("function", "class", "value")
MAX_PARAMETERS = 64  # of one signature (the learner's process sends no more)
MAX_NAME = 100       # characters of a name or parameter name


@dataclass(frozen=True)
class Parameter:
    name: str
    kind: str      # one of KINDS
    default: bool  # it has a default value


Parameters = tuple[Parameter, ...]


@dataclass(frozen=True)
class Signature:
    """One learner name: a function's parameters; a class's constructor and forward (without self).
    None where the learner's process could not tell."""

    name: str
    kind: str                          # one of NAME_KINDS
    parameters: Parameters | None = None
    forward: Parameters | None = None  # classes only

    def as_data(self) -> dict:
        """For a note: plain fields, rendered as text by course.grading.report."""
        listed = (lambda ps: None if ps is None else [
            {"name": p.name, "kind": p.kind, "default": p.default} for p in ps])
        data = {"name": self.name, "kind": self.kind, "parameters": listed(self.parameters)}
        return {**data, "forward": listed(self.forward)} if self.kind == "class" else data


@dataclass(frozen=True)
class Call:
    """A call made of a learner's function: one of `arities` positional arguments, plus `keywords`."""

    arities: tuple[int, ...]
    keywords: tuple[str, ...] = ()

    def fits(self, parameters: Parameters | None) -> bool:
        return parameters is not None and any(self._fits(parameters, n) for n in self.arities)

    def _fits(self, parameters: Parameters, arity: int) -> bool:
        positional = [p for p in parameters if p.kind in ("positional_only", "positional_or_keyword")]
        if arity > len(positional) and not any(p.kind == "var_positional" for p in parameters):
            return False
        rest = positional[arity:] + [p for p in parameters if p.kind == "keyword_only"]
        by_keyword = {p.name for p in rest if p.kind != "positional_only"}
        if any(k not in by_keyword for k in self.keywords) and not any(p.kind == "var_keyword" for p in parameters):
            return False
        return all(p.default or p.name in self.keywords for p in rest)


@dataclass(frozen=True)
class ClassCall:
    """A learner's class built with `init` and called with `forward`."""

    init: Call
    forward: Call


def fits(signature: Signature | None, call: Call | ClassCall) -> bool:
    """Whether the learner's name, as reported, can take `call`."""
    if signature is None:
        return False
    if isinstance(call, ClassCall):
        return (signature.kind == "class" and call.init.fits(signature.parameters)
                and call.forward.fits(signature.forward))
    return signature.kind in ("function", "class") and call.fits(signature.parameters)


def _parameters(value) -> Parameters | None:
    if value is None or not isinstance(value, list) or len(value) > MAX_PARAMETERS:
        return None
    parameters = []
    for item in value:
        if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], str) and item[0].isidentifier()
                and len(item[0]) <= MAX_NAME and item[1] in KINDS and type(item[2]) is bool):
            return None
        parameters.append(Parameter(item[0], item[1], item[2]))
    return tuple(parameters)


def read_signatures(reply, names) -> dict[str, Signature]:
    """The learner process's reply to "signatures" (course.sandbox.child): each asked name's entry
    that has the expected shape; a malformed entry is left out (as if the name had no signature)."""
    if not isinstance(reply, dict):
        return {}
    read = {}
    for name in names:
        entry = reply.get(name)
        if not (isinstance(entry, dict) and entry.get("kind") in NAME_KINDS):
            continue
        read[name] = Signature(name, entry["kind"], _parameters(entry.get("parameters")),
                               _parameters(entry.get("forward")) if entry["kind"] == "class" else None)
    return read
