"""Every option of every command says what it is, its default where it has one; `run --help` points the way."""

from __future__ import annotations

import argparse

import pytest

from edge.cli.main import build_parser

SKIP = (argparse._HelpAction, argparse._VersionAction)
FLAGS = (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._StoreConstAction)


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command path, parser, action) for every option and positional, nested sub-commands included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, path + (name,))
        elif not isinstance(action, SKIP):
            yield path, parser, action


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command path, its one-line help) for every sub-command, nested ones included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield path + (name,), helps.get(name)
                yield from commands(sub, path + (name,))


def problems(parser: argparse.ArgumentParser) -> list[str]:
    found = []
    for path, _, action in walk(parser):
        where = " ".join(path) or "edge-track"
        name = "/".join(action.option_strings) or action.dest
        text = (action.help or "").strip()
        if not text or action.help is argparse.SUPPRESS:
            found.append(f"{where} {name}: no help")
        elif (action.default not in (None, False, [], argparse.SUPPRESS) and not isinstance(action, FLAGS)
              and "default" not in text.lower()):
            found.append(f"{where} {name}: default {action.default!r} not stated")
    for path, text in commands(parser):
        if not (text or "").strip():
            found.append(f"{' '.join(path)}: no help line")
    return found


@pytest.fixture(scope="module")
def parser():
    return build_parser()


def test_the_walk_reaches_every_command_the_plug_ins_included(parser):
    seen = {path for path, _ in commands(parser)}
    for path in [("run",), ("config", "check"), ("config", "show"), ("sim",), ("track",), ("eval",), ("models",),
                 ("trax",), ("build-trt",), ("bench",), ("export",), ("quantize",), ("train",),
                 ("calibrate", "intrinsics"), ("calibrate", "pixel-to-angle"), ("calibrate", "gimbal"),
                 ("calibrate", "latency"), ("calibrate", "pid"), ("calibrate", "int8")]:
        assert path in seen, path
    options = {(path, opt) for path, _, action in walk(parser) for opt in action.option_strings}
    assert (("calibrate", "gimbal"), "--sim-delay") in options and (("bench",), "--checkpoint") in options


def test_every_option_has_a_help_line_with_its_default(parser):
    assert problems(parser) == []


def test_the_check_finds_a_silent_option_and_an_unstated_default():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers()
    s = sub.add_parser("step")
    s.add_argument("--silent")
    s.add_argument("--rate", type=float, default=8.0, help="test rate, deg/s")
    s.add_argument("--fine", type=int, default=3, help="retries (default 3)")
    s.add_argument("--flag", action="store_true", help="a switch")
    assert problems(p) == ["step --silent: no help", "step --rate: default 8.0 not stated", "step: no help line"]


def test_run_help_points_at_dry_run_the_web_console_and_the_exit_statuses(parser):
    text = parser._subparsers._group_actions[0].choices["run"].format_help()
    flat = " ".join(text.split())
    for words in ("Dry run", "type: log", "Web console", "web: {enabled: true", "Exit status", "0 at the end",
                  "2 for a config mistake", "128+n", "130 Ctrl-C", "143 systemctl stop"):
        assert words in flat, words
