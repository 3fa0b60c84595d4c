"""The SimpleBGC board gets its dead-man timeout (CMD_CONTROL_CONFIG) from the config when the output opens
its port, and again on every port it reopens: a pty pair stands in for the board's serial port."""

import struct

import pytest

from edge.config import ControlConfig
from edge.gimbal.protocols import simplebgc
from edge.outputs.simplebgc import SimpleBGCConfig
from support.gimbal_frames import sbgc_split, update
from support.seams import Pty

pytest.importorskip("serial", reason="needs pyserial (pip install 'edge-track[gimbal]')")


def timeouts(got):
    return [struct.unpack_from("<H", payload)[0] for cmd, payload in got if cmd == simplebgc.CMD_CONTROL_CONFIG]


def test_the_control_timeout_is_sent_on_open_and_on_every_reconnect(tmp_path):
    from edge.outputs.simplebgc import SimpleBGCOutput
    from edge.outputs.transport import SerialLink

    pty, clock = Pty(tmp_path), [0.0]
    link = SerialLink(pty.link, 115200, backoff_initial_s=0.1, clock=lambda: clock[0])
    out = SimpleBGCOutput(SimpleBGCConfig(port=pty.link, control_timeout_ms=750), ControlConfig(),
                          link=link)
    out.send(update(yaw=10.0, pitch=0.0))
    out.send(update(yaw=10.0, pitch=0.0))
    got = sbgc_split(pty.read())
    assert [cmd for cmd, _ in got] == [simplebgc.CMD_CONTROL_CONFIG, simplebgc.CMD_CONTROL, simplebgc.CMD_CONTROL]
    assert timeouts(got) == [750] and len(got[0][1]) == 41
    pty.close()
    out.send(update(yaw=10.0, pitch=0.0))         # unplugged: lost
    pty2 = Pty(tmp_path)                          # the board may have restarted, its timeout forgotten
    clock[0] += 10.0
    out.heartbeat(0, "LOST")
    got = sbgc_split(pty2.read())
    assert [cmd for cmd, _ in got] == [simplebgc.CMD_CONTROL_CONFIG, simplebgc.CMD_CONTROL], got
    assert timeouts(got) == [750]
    out.close()
    pty2.close()
