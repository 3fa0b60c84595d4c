"""Start-up opens the outputs last: a sink that refuses the start never leaves a head opened."""

from __future__ import annotations

import contextlib
import threading

import pytest

from edge.config import load_config
from edge.errors import ConfigError
from edge.runtime import sinks


def test_a_sink_that_refuses_the_start_comes_before_any_output(monkeypatch):
    opened = []
    monkeypatch.setattr(sinks, "open_outputs", lambda outputs, control: opened.append(outputs) or [])

    def refuse(*args, **kwargs):
        raise ConfigError("web.max_width: refused")

    import edge.web.publisher

    monkeypatch.setattr(edge.web.publisher, "FramePublisher", refuse)
    cfg = load_config({"web": {"enabled": True}, "outputs": [{"type": "log"}]})
    with pytest.raises(ConfigError), contextlib.ExitStack() as stack:
        sinks.open_sinks(cfg, (640, 480), show=False, stop=threading.Event(), checkpoint=lambda: None, stack=stack)
    assert opened == []


def test_the_outputs_are_opened_when_every_other_sink_is(monkeypatch):
    opened = []
    monkeypatch.setattr(sinks, "open_outputs", lambda outputs, control: opened.append(outputs) or [])
    cfg = load_config({"outputs": [{"type": "log"}]})
    with contextlib.ExitStack() as stack:
        got = sinks.open_sinks(cfg, (640, 480), show=False, stop=threading.Event(), checkpoint=lambda: None,
                               stack=stack)
    assert len(opened) == 1 and got.outputs == []
