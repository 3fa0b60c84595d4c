"""The schema framework: typed, validated dataclasses from parsed YAML, one line per mistake.

Loading is one mechanism: each value is converted to its field's declared type, then every rule
attached to the field runs (``check(value, section)``, raising ValueError with what is wrong); the
loader names the key in one line (``outputs[1].port: expected a string, got 3``). Unknown keys,
wrong types and out-of-range values are refused. The device config (edge/config.py), each output's
settings (edge/outputs) and the training configs are built with it.

A list item whose keys depend on one of them (an output's ``type:``) is a dataclass with a
``variants()`` classmethod: {value of its first field: the dataclass that value picks}.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import field
from typing import Any, Callable, Literal

from edge.errors import ConfigError, clipped, quoted

Rule = Callable[[Any, Any], None]


# The most items a list field holds unless it says (``checked(max_items=...)``): the bound is
# checked before any item is converted, so a list of a million items costs nothing to refuse.
MAX_ITEMS = 1000


def checked(*rules: Rule, default=dataclasses.MISSING, default_factory=dataclasses.MISSING,
            max_items: int = MAX_ITEMS):
    """A field whose value must also pass ``rules``: each is called as ``rule(value, section)``
    once the section is built, and raises ValueError saying what is wrong. A list field holds at
    most ``max_items``."""
    return field(default=default, default_factory=default_factory,
                 metadata={"rules": rules, "max_items": max_items})


def in_range(lo=None, hi=None) -> Rule:
    """Rule: lo <= value <= hi (either bound may be None)."""
    def rule(value, section) -> None:
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ValueError(f"{quoted(value)} is out of range [{lo}, {hi}]")
    return rule


def num(default, lo=None, hi=None):
    """A number field with an inclusive range."""
    return checked(in_range(lo, hi), default=default)


def one_of(choices: Callable[[], typing.Iterable[str]], *, empty_ok: bool = False) -> Rule:
    """Rule: value is one of ``choices()`` (a plug-in table, read when the rule runs), or empty
    with ``empty_ok``. ``config show`` lists the choices."""
    def rule(value, section) -> None:
        allowed = list(choices())
        if value not in allowed and not (empty_ok and value == ""):
            raise ValueError(f"must be one of {', '.join(allowed)}, got {quoted(value)}")
    rule.choices = choices
    return rule


def key(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _variant(tp, value, where: str):
    """The dataclass ``value`` picks among ``tp.variants()`` by ``tp``'s first field (its default
    when the key is absent); the first field's rules say why a value picks none."""
    if not isinstance(value, dict):
        return tp   # refused by _build, as any section that is no mapping
    tag = dataclasses.fields(tp)[0]
    where = key(where, tag.name)
    name = _convert(value.get(tag.name, tag.default), typing.get_type_hints(tp)[tag.name], where)
    picked = tp.variants().get(name)
    if picked is None:
        for rule in tag.metadata.get("rules", ()):
            try:
                rule(name, None)
            except ValueError as exc:
                raise ConfigError(f"{where}: {clipped(str(exc))}") from None
        raise ConfigError(f"{where}: no such choice: {quoted(name)}")
    return picked


def _convert(value: Any, tp, where: str, *, item: bool = False, max_items: int = MAX_ITEMS):
    """``value`` as type ``tp`` (a dataclass, Literal, list, list[X], bool, int, float, str or
    Any), or ConfigError naming ``where``. A section left empty in YAML (None) is its defaults;
    an empty list item is an error; a list holds at most ``max_items``."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if value is None and not item:
            value = {}
        if hasattr(tp, "variants"):
            tp = _variant(tp, value, where)
        return _build(tp, value, where)
    if tp is Any:
        return value
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{where}: must be one of {', '.join(map(str, allowed))}, got {quoted(value)}")
        return value
    if tp is list or origin is list:
        (item_tp,) = typing.get_args(tp) or (Any,)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {quoted(value)}")
        if len(value) > max_items:
            raise ConfigError(f"{where}: at most {max_items} items, got {len(value)}")
        return [_convert(v, item_tp, f"{where}[{i}]", item=True) for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {quoted(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {quoted(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {quoted(value)}")
        try:
            finite = math.isfinite(value)
        except OverflowError:   # an integer with hundreds of digits has no float
            raise ConfigError(f"{where}: expected a number, got an integer too large for a float") from None
        if not finite:
            raise ConfigError(f"{where}: expected a number, got {quoted(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            # YAML reads a bare 0 (a camera index, a port number) as a number: say how to write it.
            hint = f' (quote it: "{value}")' if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
            raise ConfigError(f"{where}: expected a string, got {quoted(value)}{hint}")
        return value
    # A schema mistake, not a user's: every field type must be one the loader checks.
    raise TypeError(f"{where}: the config loader has no check for type {tp!r}")


def _build(cls, raw, where: str):
    if not isinstance(raw, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {quoted(raw)}")
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    names = [f.name for f in fields]
    unknown = [k for k in raw if k not in names]
    if unknown:
        raise ConfigError(f"{key(where, clipped(str(unknown[0]), 60))}: unknown key (valid: {', '.join(names)})")
    limits = {f.name: f.metadata.get("max_items", MAX_ITEMS) for f in fields}
    obj = cls(**{name: _convert(value, hints[name], key(where, name), max_items=limits[name])
                 for name, value in raw.items()})
    for f in fields:
        for rule in f.metadata.get("rules", ()):
            try:
                rule(getattr(obj, f.name), obj)
            except ValueError as exc:   # a rule may quote the value it refuses: cut it
                raise ConfigError(f"{key(where, f.name)}: {clipped(str(exc))}") from None
    return obj


def build_dataclass(cls, raw, where: str = ""):
    """Any dataclass from a mapping with these checks (types, rules, unknown keys), errors naming
    the key."""
    return _build(cls, raw, where)


def sections(tp) -> list:
    """The dataclasses a field of type ``tp`` may hold: its variants, or itself."""
    return list(dict.fromkeys(tp.variants().values())) if hasattr(tp, "variants") else [tp]


def choices(cls, where: str = ""):
    """(key, choices) for every field of ``cls`` (and its sections, each variant's) with a
    ``one_of`` rule, each key once."""
    seen = set()
    for part in sections(cls):
        hints = typing.get_type_hints(part)
        for f in dataclasses.fields(part):
            name = key(where, f.name)
            tp = hints[f.name]
            if typing.get_origin(tp) is list:
                tp, name = typing.get_args(tp)[0], f"{name}[]"
            if dataclasses.is_dataclass(tp):
                found = choices(tp, name)
            else:
                found = [(name, list(rule.choices())) for rule in f.metadata.get("rules", ())
                         if hasattr(rule, "choices")]
            for name, listed in found:
                if name not in seen:
                    seen.add(name)
                    yield name, listed
