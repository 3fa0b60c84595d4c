"""Reading a YAML file a user gives (a device config, a gimbal profile, a camera calibration, a
training config): its document, or one ConfigError line, quickly, whatever the file holds.

Every bound is checked before the next step can run away: a FIFO, a device or a folder is refused
before it is opened (a read would wait for a writer, or never end); the size before the file is
read; UTF-8 before YAML sees the text; nesting depth, aliases and nodes on a first pass over the
parser's events, before any object is built. Nodes are counted with what each alias repeats, so
a billion laughs (a few dozen aliases, each repeating the one before ten times) is refused at
once. Only then does the safe loader build the document, refusing a key repeated in one mapping
(YAML would silently keep the last) and an integer too long for Python to convert.
"""

from __future__ import annotations

import os
import stat
import typing

import yaml

from edge.errors import ConfigError, clipped, quoted

MAX_BYTES = 1 << 20          # a device config is a few KB
MAX_DEPTH = 32               # the device config nests 3 deep
MAX_NODES = 10_000           # with aliases expanded
MAX_ALIASES = 100
MAX_INT_CHARS = 1000         # Python refuses over 4300 digits; no setting needs a tenth of that

# libyaml's parser where it is installed: the same events, several times faster.
_BASE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: str, what: str = "config"):
    """The one YAML document in ``path`` (None when empty), or ConfigError with one line: for a
    file that cannot be read, is not a regular file, is too large, is not UTF-8 text, is not
    valid YAML or is beyond the bounds above. ``what`` names the file in the error."""
    text = _read_text(path, what)
    try:
        _check_shape(text, path)
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f"line {mark.line + 1}" if mark is not None else "somewhere"
        problem = clipped(exc.problem or exc.context or "", 80)
        if isinstance(exc, yaml.constructor.ConstructorError):   # valid YAML, but no value
            raise ConfigError(f"{path}: {problem} ({line})") from None
        raise ConfigError(f"{path}: not valid YAML ({line}: {problem})") from None
    except yaml.YAMLError as exc:   # the reader's: a character YAML does not allow
        raise ConfigError(f"{path}: not valid YAML ({clipped(str(exc).splitlines()[0], 80)})") from None
    except (RecursionError, MemoryError):
        raise ConfigError(f"{path}: too complex to read as YAML") from None
    except (ValueError, OverflowError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{path}: a value YAML cannot build ({clipped(str(exc), 80)})") from None


_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a device"),
          (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))


def _not_regular(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in _KINDS if test(mode)), "not a file")


def _read_text(path: str, what: str) -> str:
    try:
        kind = _not_regular(os.stat(path).st_mode)
        if kind is None:
            # Non-blocking and no controlling terminal: should a FIFO or a tty take the file's
            # place between the stat and the open, the open neither waits nor adopts it.
            flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
            with os.fdopen(os.open(path, flags), "rb") as f:
                kind = _not_regular(os.fstat(f.fileno()).st_mode)
                data = b"" if kind else f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if kind:
        raise ConfigError(f"cannot read {what} {path}: {kind}, not a regular file")
    if len(data) > MAX_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_BYTES // 1024} KiB; a {what} is a few KB of text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x})") from None


def _check_shape(text: str, path: str) -> None:
    """Raise ConfigError when the YAML nests, aliases or expands beyond the bounds (parse
    errors are left to the loader, which reports them with their line)."""
    depth = nodes = aliases = 0
    anchors: dict[str, int | None] = {}   # anchor -> nodes it stands for; None while still open
    opened: list[tuple[str | None, int]] = []

    def refuse(problem: str, event) -> typing.NoReturn:
        raise ConfigError(f"{path}: {problem} (line {event.start_mark.line + 1})")

    for event in yaml.parse(text, Loader=_BASE):
        if isinstance(event, yaml.ScalarEvent):
            nodes += 1
            if event.anchor:
                anchors[event.anchor] = 1
        elif isinstance(event, yaml.CollectionStartEvent):
            nodes += 1
            depth += 1
            if depth > MAX_DEPTH:
                refuse(f"nests deeper than {MAX_DEPTH} levels", event)
            if event.anchor:
                anchors[event.anchor] = None
            opened.append((event.anchor, nodes))
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
            anchor, first = opened.pop()
            if anchor:
                anchors[anchor] = nodes - first + 1
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                refuse(f"more than {MAX_ALIASES} aliases", event)
            size = anchors.get(event.anchor, 0)   # an undefined one: the loader names it
            if size is None:
                refuse(f"alias *{clipped(event.anchor, 40)} inside its own anchor", event)
            nodes += size
        if nodes > MAX_NODES:
            refuse(f"more than {MAX_NODES} YAML nodes, with what aliases repeat", event)


class _Loader(_BASE):
    """The safe loader, refusing repeated keys and over-long integers, with every value error
    raised while a node is built reported at that node's line."""

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:   # a date like 2026-13-45
            raise yaml.constructor.ConstructorError(None, None, str(exc), node.start_mark) from None

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, typing.Hashable):
                continue   # the safe loader refuses it next, as YAML it is
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {quoted(str(key))}",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)

    def construct_yaml_int(self, node):
        if len(node.value) > MAX_INT_CHARS:
            raise yaml.constructor.ConstructorError(
                None, None, f"an integer of {len(node.value)} digits", node.start_mark)
        return super().construct_yaml_int(node)


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)
