"""Typed, validated parameters.

Every notebook, every training run and every experiment turns its raw parameters (a papermill
parameter cell, a YAML file, a dict) into a frozen dataclass derived from :class:`Spec` before any
compute happens.  A bad value fails at once with a :class:`ParameterError` that names the parameter,
the value and what is allowed.

Declare a spec with ordinary dataclass fields and attach constraints with :func:`param`::

    @dataclass(frozen=True)
    class LinearSpec(Spec):
        eps: float = param(0.3, ge=0.0, doc="adversarial budget (L-inf)")
        norm: str = param("linf", choices=("linf", "l2"))
        eps_grid: tuple[float, ...] = param((0.0, 0.1), each=dict(ge=0.0))

Supported field types: ``bool``, ``int``, ``float``, ``str``, ``T | None``, nested ``Spec`` subclasses
(given as a mapping), and ``tuple[T, ...]`` of any of those (a list of tasks is a tuple of specs).  Lists
from YAML become tuples so that specs are hashable and their hash is stable.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import types
import typing
from dataclasses import MISSING, dataclass, field
from typing import Any, Mapping

__all__ = ["ParameterError", "Spec", "param", "check_names"]


class ParameterError(ValueError):
    """A parameter has a wrong type, an out-of-range value, an unknown name or an unknown choice."""

    def __init__(self, name: str, value: Any, allowed: str, where: str = ""):
        self.name, self.value, self.allowed, self.where = name, value, allowed, where
        place = f" (in {where})" if where else ""
        super().__init__(f"parameter '{name}' = {value!r}{place}: {allowed}")


def param(default: Any = MISSING, *, doc: str = "", ge=None, gt=None, le=None, lt=None,
          choices=None, each: Mapping | None = None, min_len: int | None = None, added: bool = False):
    """A dataclass field with constraints (checked by :meth:`Spec.__post_init__`).

    ``added=True`` marks a parameter added after runs were stored whose default keeps the old
    behaviour: at its default it is left out of :meth:`Spec.digest`, so those runs keep their keys."""
    meta = dict(doc=doc, ge=ge, gt=gt, le=le, lt=lt, choices=choices, each=each, min_len=min_len,
                added=added or None)
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple (immutable) default for sequence parameters")
    return field(default=default, metadata=meta)


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is tuple:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if isinstance(tp, type) and issubclass(tp, Spec):
        return f"a mapping of {tp.__name__} parameters"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


def _check_bounds(name, value, meta, where):
    for key, op, word in (("ge", lambda a, b: a >= b, ">="), ("gt", lambda a, b: a > b, ">"),
                          ("le", lambda a, b: a <= b, "<="), ("lt", lambda a, b: a < b, "<")):
        bound = meta.get(key)
        if bound is not None and not op(value, bound):
            raise ParameterError(name, value, f"must be {word} {bound}", where)
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise ParameterError(name, value, f"must be one of {list(choices)}", where)


def _coerce(name: str, value: Any, tp, meta: Mapping, where: str):
    """Check ``value`` against the annotation ``tp`` and the constraints; return the canonical value."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ParameterError(name, value, f"must be {_type_name(tp)}", where)
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(name, value, arg, meta, where)
            except ParameterError as err:
                errors.append(err)
        raise errors[0]
    if origin is tuple:
        inner = typing.get_args(tp)[0]
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ParameterError(name, value, f"must be {_type_name(tp)}", where)
        each = meta.get("each") or {}
        out = tuple(_coerce(f"{name}[{i}]", v, inner, each, where) for i, v in enumerate(value))
        min_len = meta.get("min_len")
        if min_len is not None and len(out) < min_len:
            raise ParameterError(name, value, f"must hold at least {min_len} values", where)
        return out
    if isinstance(tp, type) and issubclass(tp, Spec):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ParameterError(name, value, f"must be {_type_name(tp)}", where)
        return tp.from_params(value, where=f"{where}.{name}" if where else name)
    if tp is bool:
        if not isinstance(value, bool):
            raise ParameterError(name, value, "must be a boolean (true or false)", where)
    elif tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParameterError(name, value, "must be an integer", where)
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            hint = " (YAML reads 1e-3 as a string: write 1.0e-3)" if isinstance(value, str) and _numeric(value) else ""
            raise ParameterError(name, value, f"must be a number{hint}", where)
        value = float(value)
        if not math.isfinite(value):
            raise ParameterError(name, value, "must be a finite number", where)
    elif tp is str:
        if not isinstance(value, str):
            raise ParameterError(name, value, "must be a string", where)
    else:  # pragma: no cover - a spec declared with an unsupported type is a programming error
        raise TypeError(f"unsupported parameter type {tp!r} for {name}")
    _check_bounds(name, value, meta, where)
    return value


def _numeric(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def check_names(given, allowed, where: str = "") -> None:
    """Raise :class:`ParameterError` for the first name in ``given`` that is not in ``allowed``."""
    allowed = list(allowed)
    for name in given:
        if name not in allowed:
            close = difflib.get_close_matches(name, allowed, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ParameterError(name, "<unknown name>",
                                 f"{hint}known parameters: {', '.join(sorted(allowed))}", where)


def _export(value: Any, method) -> Any:
    """A field's value as plain data: a spec through ``method``, a tuple as a list (of exported values)."""
    if isinstance(value, Spec):
        return method(value)
    if isinstance(value, tuple):
        return [_export(v, method) for v in value]
    return value


@dataclass(frozen=True)
class Spec:
    """Base class of all validated parameter sets (frozen dataclasses)."""

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        where = getattr(type(self), "_where", "") or type(self).__name__
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Mapping) and isinstance(f.default, Spec):
                value = {**f.default.to_dict(), **value}     # a section overrides its own defaults
            value = _coerce(f.name, value, hints[f.name], f.metadata, where)
            object.__setattr__(self, f.name, value)
        self.validate()

    def validate(self) -> None:
        """Cross-field checks; override and raise :class:`ParameterError`."""

    # construction -------------------------------------------------------------------------------
    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_params(cls, params: Mapping[str, Any], *, where: str = ""):
        """Build from a mapping; unknown names are an error (papermill would accept them silently)."""
        if not isinstance(params, Mapping):
            raise ParameterError(where or cls.__name__, params, "must be a mapping of parameters")
        check_names(params, cls.names(), where or cls.__name__)
        try:
            return cls(**dict(params))
        except ParameterError as err:
            if where and err.where in ("", cls.__name__, getattr(cls, "_where", None)):
                raise ParameterError(err.name, err.value, err.allowed, where) from None
            raise

    @classmethod
    def from_namespace(cls, namespace: Mapping[str, Any], before: set[str] | frozenset[str] = frozenset(),
                       *, where: str = ""):
        """Build from a notebook's globals.

        ``before`` is the set of global names that existed before the parameters cell ran: every
        public name that appeared since (the parameters cell and papermill's injected cell) must be a
        field of the spec, so a misspelt injected parameter is an error instead of a silent no-op.
        """
        new = [n for n in namespace if n not in before and not n.startswith("_")
               and not isinstance(namespace[n], types.ModuleType) and not callable(namespace[n])]
        check_names(new, cls.names(), where or cls.__name__)
        values = {n: namespace[n] for n in cls.names() if n in namespace}
        return cls.from_params(values, where=where)

    # export -------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = _export(v, Spec.to_dict)
        return out

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def digest(self, length: int = 12) -> str:
        """A stable hash of the spec's values (key of the run store); parameters marked ``added`` are
        left out while at their default (see :func:`param`)."""
        text = json.dumps({"type": type(self).__name__, **self._digest_dict()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:length]

    def digest_dict(self) -> dict[str, Any]:
        """The values :meth:`digest` hashes: parameters marked ``added`` left out while at their default."""
        return self._digest_dict()

    def _digest_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.metadata.get("added") and v == f.default:
                continue
            out[f.name] = _export(v, Spec._digest_dict)
        return out

    @classmethod
    def describe(cls) -> str:
        """One line per parameter: name, type, default and constraints (for docs and errors)."""
        hints = typing.get_type_hints(cls)
        lines = []
        for f in dataclasses.fields(cls):
            m = {k: v for k, v in f.metadata.items() if v is not None and k not in ("doc", "added")}
            extra = ", ".join(f"{k}={v}" for k, v in m.items())
            default = "" if f.default is MISSING else f" = {f.default!r}"
            lines.append(f"{f.name}: {_type_name(hints[f.name])}{default}"
                         f"{' [' + extra + ']' if extra else ''}  {f.metadata.get('doc', '')}".rstrip())
        return "\n".join(lines)
