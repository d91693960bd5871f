"""Command-line settings -> dataclass fields: one-line errors for unknown keys and wrong types.

Hydra hands over whatever the command line said (``size=abc`` is the string ``"abc"``); the
settings dataclasses (``PipelineConfig``, ``AlignConfig``) declare what each key holds. Converting
here, from the field types, turns a typo or a wrong type into an ``InputError`` naming the key,
the value and the expected type before any work starts.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import fields
from typing import Any, Literal, Union, get_args, get_origin

from align3r.errors import InputError


def field_names(datacls) -> list[str]:
    return [f.name for f in fields(datacls)]


def unknown_key_error(key: str, known: Iterable[str], *, prefix: str = "", what: str = "setting") -> InputError:
    """``unknown setting 'max_frame'; did you mean max_frames?`` (close matches by difflib, else
    every known key)."""
    known = sorted(known)
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
    if close:
        hint = "did you mean " + " or ".join(prefix + c for c in close) + "?"
    else:
        hint = "known: " + ", ".join(prefix + k for k in known)
    return InputError(f"unknown {what} {prefix + key!r}; {hint}")


def check_keys(keys: Iterable[str], known: Iterable[str], *, prefix: str = "", what: str = "setting") -> None:
    """Raise :func:`unknown_key_error` for the first key that is not in ``known``."""
    known = set(known)
    for key in keys:
        if key not in known:
            raise unknown_key_error(key, known, prefix=prefix, what=what)


class _Mismatch(Exception):
    pass


def _convert(value: Any, tp: Any) -> Any:
    """``value`` as type ``tp`` (numbers from strings, ints as floats, lists as tuples), or
    ``_Mismatch``. Types it does not know pass the value through unchecked."""
    if tp is Any:
        return value
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        # strings last: "str" takes numbers too, which an int or a list alternative should get first
        for arg in sorted((a for a in args if a is not type(None)), key=lambda a: a is str):
            try:
                return _convert(value, arg)
            except _Mismatch:
                pass
        raise _Mismatch
    if origin is Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise _Mismatch
    if value is None:
        raise _Mismatch
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if tp in (int, float):
        if isinstance(value, bool):
            raise _Mismatch
        if isinstance(value, str):
            try:
                value = float(value.strip()) if tp is float else int(value.strip())
            except ValueError:
                raise _Mismatch from None
        if tp is int and isinstance(value, float):
            if not value.is_integer():
                raise _Mismatch
            value = int(value)
        if isinstance(value, (int, float)):
            return tp(value)
        raise _Mismatch
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)  # Hydra reads model=123 as a number
        raise _Mismatch
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        if origin is list or (len(args) == 2 and args[1] is Ellipsis):
            item = args[0] if args else Any
            out = [_convert(v, item) for v in value]
        else:
            if len(value) != len(args):
                raise _Mismatch
            out = [_convert(v, a) for v, a in zip(value, args)]
        return tuple(out) if origin is tuple else out
    if origin is dict or tp is dict:
        if isinstance(value, Mapping):
            return dict(value)
        raise _Mismatch
    return value


def describe_type(tp: Any) -> str:
    """What a value of type ``tp`` looks like on the command line ("an integer or null")."""
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        return " or ".join([describe_type(a) for a in args if a is not type(None)]
                           + (["null"] if type(None) in args else []))
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_plural(args[0])}"
        if len(set(args)) == 1:
            return f"a list of {len(args)} {_plural(args[0])}"
        return "a list [" + ", ".join(describe_type(a) for a in args) + "]"
    if origin is list:
        return f"a list of {_plural(args[0])}" if args else "a list"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string",
            dict: "a mapping"}.get(origin or tp, getattr(tp, "__name__", str(tp)))


def _plural(tp: Any) -> str:
    return {int: "integers", float: "numbers", str: "strings", bool: "booleans"}.get(tp, describe_type(tp))


def show_value(value: Any) -> str:
    """A value as one would type it on the command line (Hydra syntax)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(show_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{show_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str) and (value == "" or value != value.strip()):
        return repr(value)
    return str(value)


def convert_value(value: Any, tp: Any, key: str) -> Any:
    """``value`` as type ``tp``; ``InputError`` "key=value: expected <type>" when it does not fit."""
    try:
        return _convert(value, tp)
    except _Mismatch:
        raise InputError(f"{key}={show_value(value)}: expected {describe_type(tp)}") from None


def typed_fields(datacls, values: Mapping[str, Any], *, prefix: str = "") -> dict[str, Any]:
    """``values`` converted to the types of ``datacls``'s fields (unknown keys raise, close matches
    named); a value that does not fit raises ``InputError`` "key=value: expected <type>"."""
    check_keys(values, field_names(datacls), prefix=prefix)
    hints = typing.get_type_hints(datacls)
    out = {}
    for key, value in values.items():
        try:
            out[key] = _convert(value, hints[key])
        except _Mismatch:
            raise InputError(f"{prefix}{key}={show_value(value)}: expected {describe_type(hints[key])}") from None
    return out
