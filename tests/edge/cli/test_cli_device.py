"""``edge-track run``, ``config`` and the desk shorthand: what their help and their log say."""

import argparse
import signal

import pytest

from edge.cli.main import build_parser
from support.media import write_video
from support.processes import Child, edge_track_cmd


def subcommand(parser, *names):
    for name in names:
        parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
    return parser


@pytest.mark.parametrize("names", [("run",), ("config", "check"), ("config", "show")])
def test_every_option_of_run_and_config_has_help(names):
    parser = subcommand(build_parser(), *names)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            continue
        assert action.help, f"{' '.join(names)} {action.option_strings or action.dest} has no help"


@pytest.mark.parametrize("flag", ["--init", "--roi"])
def test_the_desk_log_names_the_flag_the_target_came_from(tmp_path, tiny_model_path, flag):
    video = str(tmp_path / "clip.avi")
    gt = write_video(video, n=120)
    target = ",".join(f"{v:g}" for v in gt[0]) if flag == "--init" else "center:60x60"
    with Child(edge_track_cmd() + ["--camera", video, "--model", tiny_model_path, flag, target]) as child:
        child.wait_for_line("tracking target")
        child.stop(signal.SIGTERM)
    started = [line for line in child.seen if "tracking target" in line]
    assert started and started[0].rstrip().endswith(f"({flag})"), "".join(child.seen)
