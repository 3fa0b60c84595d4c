"""MkDocs hook: the configuration reference page, generated from edge/config.py at build time.

The page is never written by hand, so it cannot drift from the schema: every key, its type, its
default, the rules the loader checks (ranges, choices, other rules by name) and the comments
written beside the field in edge/config.py (an output's keys: in its own settings class, whose
``type:`` values the row names). tests/test_docs.py checks that it names every key that
``edge-track config show`` prints, with the same default.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import json
import os
import sys
import textwrap
import tokenize
import typing

PAGE = "reference/configuration.md"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _schema():
    if ROOT not in sys.path:   # `mkdocs build` from a checkout without an installed edge-track
        sys.path.insert(0, ROOT)
    import edge.config

    return edge.config


def field_comments(cls) -> dict[str, str]:
    """The comments written with each field of ``cls``: the comment lines right above it and the
    comment at the end of its line, joined."""
    source = textwrap.dedent(inspect.getsource(cls))
    comments: dict[int, str] = {}
    code_lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
        elif tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                              tokenize.ENDMARKER):
            code_lines.add(tok.start[0])
    names = {f.name for f in dataclasses.fields(cls)}
    found: dict[str, str] = {}
    pending: list[str] = []
    for number, line in enumerate(source.splitlines(), start=1):
        stripped = line.strip()
        if number not in code_lines:
            pending = pending + [comments[number]] if number in comments else []
            continue
        name = stripped.split(":", 1)[0].strip()
        if name in names and ":" in stripped:
            parts = pending + ([comments[number]] if number in comments else [])
            found[name] = " ".join(p for p in parts if p)
        pending = []
    return found


def _closure(fn) -> dict:
    cells = fn.__closure__ or ()
    return {name: cell.cell_contents for name, cell in zip(fn.__code__.co_freevars, cells)}


def _rule_name(fn) -> str:
    return fn.__qualname__.split(".<locals>")[0].lstrip("_")


def describe_rule(rule) -> str:
    """One rule of a field in words: ranges and choices exactly, any other rule by its name and
    arguments (so a rule added to the schema shows up here without a change to this page)."""
    name, args = _rule_name(rule), _closure(rule)
    if hasattr(rule, "choices"):
        text = "one of " + ", ".join(f"`{c}`" for c in rule.choices())
        return text + (", or empty" if args.get("empty_ok") else "")
    if name == "in_range":
        lo, hi = args.get("lo"), args.get("hi")
        if lo is not None and hi is not None:
            return f"{_number(lo)} to {_number(hi)}"
        return f"at least {_number(lo)}" if lo is not None else f"at most {_number(hi)}"
    if name == "optional" and callable(args.get("check")):
        return "empty (none), or " + describe_rule(args["check"])
    if name == "unset_or" and callable(args.get("rule")):
        return "0 (not set), or " + describe_rule(args["rule"])
    if name == "required_port" and callable(args.get("check")):
        return "required while enabled; " + describe_rule(args["check"])
    if name == "camera_source":
        from edge.camera import SOURCES

        return "a source: " + ", ".join(kind.name for kind in SOURCES)
    words = _plain(name)
    values = [describe_rule(v) if callable(v) else f"`{v}`" for v in args.values()]
    if len(values) == 1:
        return f"{words} {values[0]}"
    extra = ", ".join(f"{k} {v}" for k, v in zip(args, values))
    return f"{words} ({extra})" if extra else words


def _plain(name: str) -> str:
    return name.lstrip("_").replace("_", " ")


def _number(value) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return " or ".join(f"`{v}`" for v in typing.get_args(tp))
    if origin is list:
        args = typing.get_args(tp)
        return f"list of {_type_name(args[0])}" if args else "list"
    if dataclasses.is_dataclass(tp):
        return "section"
    return getattr(tp, "__name__", str(tp))


def _default(f):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def rows(cls, where: str = "", *, pick: bool = True):
    """(key, type, default JSON, rules, comment) for every leaf field of ``cls``, sections first
    flattened (``camera.width``; list items as ``outputs[].type``). A section with variants (an
    output's settings, picked by its ``type``) gives its own keys, then each variant's others, once
    each, their comment led by the types that have them."""
    if pick and hasattr(cls, "variants"):
        yield from _variant_rows(cls, where)
        return
    hints = typing.get_type_hints(cls)
    comments = {}
    for part in reversed(cls.__mro__):   # a field's comment stands where it is declared
        if dataclasses.is_dataclass(part):
            comments.update(field_comments(part))
    for f in dataclasses.fields(cls):
        key = f"{where}.{f.name}" if where else f.name
        tp = hints[f.name]
        item = typing.get_args(tp)[0] if typing.get_origin(tp) is list and typing.get_args(tp) else None
        if dataclasses.is_dataclass(tp):
            yield from rows(tp, key)
            continue
        if item is not None and dataclasses.is_dataclass(item):
            yield from rows(item, f"{key}[]")
            continue
        default = _default(f)
        rules = "; ".join(field_rules(f, tp))
        yield key, _type_name(tp), json.dumps(default), rules, comments.get(f.name, "")


def _variant_rows(cls, where: str):
    own = {f.name for f in dataclasses.fields(cls)}
    yield from rows(cls, where, pick=False)
    found: dict[tuple, tuple] = {}   # a key whose rules or notes differ by type gets a row each
    for name, variant in cls.variants().items():
        for row in rows(variant, where, pick=False):
            if row[0].rsplit(".", 1)[-1] in own:   # type and enabled: the section's own rows
                continue
            names, first = found.get(row, ([], row))
            found[row] = (names + [name], first)
    for names, (key, tp, default, rules, comment) in found.values():
        told = "for " + ", ".join(f"`{n}`" for n in names)
        yield key, tp, default, rules, f"{told}: {comment}" if comment else told


def field_rules(f, tp) -> list[str]:
    """What the loader checks of field ``f`` besides its type, in words."""
    rules = [describe_rule(r) for r in f.metadata.get("rules", ())]
    if typing.get_origin(tp) is list and f.metadata.get("max_items") is not None:
        rules.append(f"at most {f.metadata['max_items']} items")
    return rules


def list_sections(cls):
    """(key, field, item class) for every list-of-sections field of ``cls``."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        args = typing.get_args(hints[f.name])
        if typing.get_origin(hints[f.name]) is list and args and dataclasses.is_dataclass(args[0]):
            yield f.name, f, args[0]


def _cell(text: str) -> str:
    """``text`` safe in a table cell: a pipe is escaped, and a code span holding one is split
    around it (inside a code span the escape would show)."""
    parts = text.split("`")
    for i, part in enumerate(parts):
        parts[i] = part.replace("|", "`\\|`" if i % 2 else "\\|")
    return "`".join(parts)


def _list_intro(section: str, f, item) -> str:
    default = _default(f)
    if not default:
        told = "Default: none."
    elif all(entry == item() for entry in default):
        told = f"Default: {len(default)} item{'s' if len(default) > 1 else ''}, with the defaults below."
    else:
        told = f"Default: `{json.dumps([dataclasses.asdict(entry) for entry in default])}`."
    rules = field_rules(f, typing.List[item])
    checked = f" The list itself: {'; '.join(rules)}." if rules else ""
    return (f"A list; each item has the keys below (`{section}: [{{type: ..., ...}}, ...]`). "
            f"{told}{checked}")


def render() -> str:
    config = _schema()
    sections = []
    top_comments = field_comments(config.DeviceConfig)
    for f in dataclasses.fields(config.DeviceConfig):
        sections.append(f.name)
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated from edge/config.py by docs/hooks/config_reference.py at build time: do not edit. -->",
        "",
        "The device YAML that `edge-track run --config device.yaml` reads. Every key is optional and has",
        "the default shown; `edge-track config show` prints them all as YAML and `edge-track config check",
        "device.yaml` refuses what `run` would (an unknown or repeated key, a wrong type, a value outside",
        "its rule) with one line naming the key, and exit status 2.",
        "",
        "This page is generated from the schema (`edge/config.py`, with the controller's section in",
        "`edge/control/settings.py` and each output type's keys in its own module under `edge/outputs/`)",
        "each time the site is built.",
        "",
    ]
    all_rows = list(rows(config.DeviceConfig))
    for section in sections:
        prefix = section + "."
        own = [r for r in all_rows if r[0].startswith(prefix) or r[0].startswith(section + "[]")]
        lines += [f"## `{section}`", ""]
        if top_comments.get(section):
            lines += [top_comments[section], ""]
        for name, f, item in list_sections(config.DeviceConfig):
            if name == section:
                lines += [_list_intro(section, f, item), ""]
        lines += ["| key | type | default | allowed | notes |", "|---|---|---|---|---|"]
        for key, tp, default, rules, comment in own:
            lines.append(f"| `{key}` | {_cell(tp)} | {_cell(f'`{default}`')} | {_cell(rules)} | {_cell(comment)} |")
        lines.append("")
    return "\n".join(lines)


def on_files(files, config):
    """Add the generated page to the site (mkdocs >= 1.6)."""
    from mkdocs.structure.files import File

    files.append(File.generated(config, PAGE, content=render()))
    return files
