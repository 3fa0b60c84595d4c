"""Byte-level protocols against independent decoders and known frames."""

import importlib.util
import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import REPO
from edge.gimbal.protocols import boxproto, pelco_d, simplebgc
from edge.gimbal.protocols.crc import crc16_ccitt, crc16_sbgc


def mcu_module():
    spec = importlib.util.spec_from_file_location("boxrx", os.path.join(REPO, "firmware_scripts", "mcu", "boxrx.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def independent_decode(frame: bytes) -> dict:
    """The layout from the protocol's documentation, decoded field by field."""
    assert frame[:2] == b"\xAA\x55" and frame[2] == 26 and len(frame) == 31
    crc = 0xFFFF
    for b in frame[2:29]:          # CRC-16/CCITT-FALSE, written out again here
        for i in range(8):
            bit = ((b >> (7 - i)) & 1) ^ (crc >> 15)
            crc = ((crc << 1) & 0xFFFF) ^ (0x1021 if bit else 0)
    assert struct.unpack("<H", frame[29:31])[0] == crc
    f = struct.unpack("<BBHIB4h2h2HB", frame[3:29])
    return {"version": f[0], "type": f[1], "seq": f[2], "t_ms": f[3], "state": f[4], "box": f[5:9],
            "nx": f[9] / 32767, "ny": f[10] / 32767, "nw": f[11] / 65535, "nh": f[12] / 65535, "score": f[13] / 255}


def test_crc_check_values():
    assert crc16_ccitt(b"123456789") == 0x29B1        # the catalogued check value of CCITT-FALSE


def test_box_frame_layout():
    msg = boxproto.make_message(7, 123456, "TRACKING", (300, 200, 40, 80), (640, 480), 0.8)
    d = independent_decode(boxproto.encode(msg))
    assert d["version"] == 1 and d["type"] == 1 and d["seq"] == 7 and d["t_ms"] == 123456 and d["state"] == 1
    assert d["box"] == (300, 200, 40, 80)
    assert (d["nx"] == pytest.approx((320 - 320) / 320, abs=1e-4)
            and d["ny"] == pytest.approx((240 - 240) / 240, abs=1e-4))
    assert d["nw"] == pytest.approx(40 / 640, abs=1e-4) and d["score"] == pytest.approx(0.8, abs=0.005)


@settings(max_examples=100, deadline=None)
@given(seq=st.integers(0, 70000), x=st.floats(-5e4, 5e4), y=st.floats(-5e4, 5e4), w=st.floats(0, 5e4),
       h=st.floats(0, 5e4), score=st.floats(0, 1), state=st.sampled_from(["TRACKING", "LOST", "IDLE"]),
       chunks=st.lists(st.integers(1, 40), min_size=1, max_size=8))
def test_box_round_trip_with_split_reads_and_garbage(seq, x, y, w, h, score, state, chunks):
    msgs = [boxproto.make_message(seq + i, 1000 * i, state, (x, y, w, h), (1280, 720), score) for i in range(3)]
    stream = b"\x00\xAA\x13garbage" + b"".join(boxproto.encode(m) for m in msgs) + b"\xAA"
    parser, got, pos = boxproto.BoxParser(), [], 0
    for size in chunks * 20:
        got += parser.feed(stream[pos:pos + size])
        pos += size
    got += parser.feed(stream[pos:])
    assert [m.seq for m in got] == [m.seq for m in msgs]
    assert got[0].box_px == msgs[0].box_px and got[0].state == state
    assert all(-1 <= v <= 1 for v in got[0].center_norm)


def test_corrupted_frames_are_counted_and_skipped():
    good = [boxproto.encode(boxproto.make_message(i, 0, "TRACKING", (1, 2, 3, 4), (10, 10), 0.5)) for i in range(3)]
    bad = bytearray(good[1])
    bad[15] ^= 0xFF
    parser = boxproto.BoxParser()
    got = parser.feed(good[0] + bytes(bad) + good[2])
    assert [m.seq for m in got] == [0, 2] and parser.crc_errors == 1


def test_microcontroller_receiver_decodes_the_host_stream():
    rx = mcu_module().Receiver()
    frames = [boxproto.encode(boxproto.make_message(i, 0, "TRACKING", (600, 100, 40, 40), (640, 480), 0.9))
              for i in range(4)]
    stream = b"junk" + b"".join(frames)
    got = []
    for i in range(0, len(stream), 7):
        got += rx.feed(stream[i:i + 7])
    assert [g[1] for g in got] == [0, 1, 2, 3]
    _, _, state, nx, ny, score = got[0]
    assert (state == 1 and nx == pytest.approx((620 - 320) / 320, abs=1e-3) and ny < 0
            and score == pytest.approx(0.9, abs=0.01))


def test_microcontroller_moves_servos_only_while_tracking():
    mcu = mcu_module()
    pan, tilt = [], []
    head = mcu.PanTilt(pan.append, tilt.append)
    head.apply(1, 0.5, -0.5)
    head.apply(2, 0.5, -0.5)     # LOST: hold
    head.apply(0, 0.5, -0.5)     # IDLE: hold
    assert len(pan) == 1 and pan[0] > 0 and tilt[0] > 0


def test_nmea_lines_and_commands():
    line = boxproto.encode_ascii(boxproto.make_message(3, 99, "LOST", (1, 2, 3, 4), (100, 100), 0.25))
    text = line.decode()
    assert text.startswith("$EDTRK,3,LOST,1,2,3,4,") and text.endswith("\r\n")
    body, checksum = text[1:].strip().split("*")
    x = 0
    for ch in body:
        x ^= ord(ch)
    assert checksum == f"{x:02X}"
    assert boxproto.parse_command(boxproto.encode_command("select", (10, 20, 30, 40))) == ("select", (10, 20, 30, 40))
    assert boxproto.parse_command(boxproto.encode_command("stop")) == ("stop", None)
    assert boxproto.parse_command(b"$EDSTP*00\r\n") is None         # bad checksum
    assert boxproto.parse_command(b"$EDSEL,1,2,-3,4*00") is None


def reflected_crc16_8005(data: bytes) -> int:
    """SimpleBGC's CRC written another way: reflect each input byte, then MSB-first poly 0x8005."""
    crc = 0
    for b in data:
        b = int(f"{b:08b}"[::-1], 2)
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def test_simplebgc_control_frames():
    frame = simplebgc.control_speed(yaw_dps=12.2074, pitch_dps=-24.4148)
    assert frame[0] == 0x24 and frame[1] == 67 and frame[2] == 15 and frame[3] == (67 + 15) & 0xFF
    payload = frame[4:19]
    assert payload[:3] == bytes([1, 1, 1])
    roll, _, pitch, _, yaw, _ = struct.unpack("<6h", payload[3:])
    assert (roll, pitch, yaw) == (0, -200, 100)
    assert struct.unpack("<H", frame[19:21])[0] == reflected_crc16_8005(frame[1:19]) == crc16_sbgc(frame[1:19])
    assert simplebgc.parse_v2(frame) == (67, payload)
    # BaseCam's example: yaw to 45 degrees in angle mode -> yaw angle 2048 = bytes 00 08.
    angle = simplebgc.control_angle(45.0, 0.0)
    assert angle[4 + 3 + 8 + 2:4 + 15] == b"\x00\x08"
    with pytest.raises(ValueError):
        simplebgc.parse_v2(frame[:-1] + bytes([frame[-1] ^ 1]))


def test_pelco_d_frames():
    assert pelco_d.speed_command(1, 30.0, 0.0, 60.0) == bytes([0xFF, 0x01, 0x00, 0x02, 0x20, 0x00, 0x23])
    assert pelco_d.speed_command(2, -60.0, -6.0, 60.0) == bytes([0xFF, 0x02, 0x00, 0x14, 0x3F, 0x06, 0x5B])
    assert pelco_d.stop(1) == bytes([0xFF, 0x01, 0, 0, 0, 0, 0x01])


def bitwise_crc16_ccitt_false(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE bit by bit: poly 0x1021, MSB first, no reflection, no final XOR."""
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=80), init=st.integers(0, 0xFFFF))
def test_crc16_ccitt_matches_the_bitwise_definition(data, init):
    assert crc16_ccitt(data) == bitwise_crc16_ccitt_false(data)
    assert crc16_ccitt(data, init) == bitwise_crc16_ccitt_false(data, init)


def test_nmea_checksum_of_known_sentences():
    # A GPS sentence from the NMEA 0183 literature, and our own line checked by hand.
    assert boxproto.nmea_checksum("GPGGA,092750.000,5321.6802,N,00630.3372,W,1,8,1.03,61.7,M,55.2,M,,") == 0x76
    assert (boxproto.encode_command("stop")
            == b"$EDSTP*" + f"{ord('E') ^ ord('D') ^ ord('S') ^ ord('T') ^ ord('P'):02X}".encode() + b"\r\n")


def noise(n: int, seed: int = 0) -> bytes:
    """Line noise without line ends: what a floating UART input or a baud mismatch delivers,
    including stray '$' and '*' bytes."""
    import random

    rng = random.Random(seed)
    return bytes(rng.choice(b"$*,EDSL0123456789\x00\xff\x7f abc\r") for _ in range(n))


def test_command_reader_takes_the_next_valid_line_after_line_noise():
    reader = boxproto.CommandReader()
    assert reader.feed(noise(5000)) == []
    assert reader.feed(boxproto.encode_command("select", (10, 20, 30, 40))) == [("select", (10, 20, 30, 40))]
    # Split anywhere, noise right before the '$' and right after the line end.
    stream = (noise(3000, 1) + boxproto.encode_command("stop") + noise(700, 2)
              + boxproto.encode_command("select", (1, 2, 3, 4)))
    got = []
    for i in range(0, len(stream), 37):
        got += reader.feed(stream[i:i + 37])
    assert got == [("stop", None), ("select", (1, 2, 3, 4))]


def test_command_reader_buffer_is_bounded():
    reader = boxproto.CommandReader()
    for seed in range(20):
        reader.feed(b"$" + noise(5000, seed).replace(b"$", b"x"))
        assert reader.buffered <= boxproto.MAX_COMMAND_LINE
    assert reader.feed(b"\n" + boxproto.encode_command("stop")) == [("stop", None)]


@pytest.mark.parametrize("fields", ["1,2,inf,4", "1,2,3,nan", "1,2,1e30,40", "1,2,0,4", "1,2,3,-4", "1e30,2,3,4",
                                    "nan,2,3,4", "1,-inf,3,4", "1,2,40000,4"])
def test_edsel_with_non_finite_or_absurd_numbers_is_rejected(fields):
    body = f"EDSEL,{fields}"
    checksum = 0
    for ch in body.encode():
        checksum ^= ch
    line = f"${body}*{checksum:02X}\r\n".encode()
    assert boxproto.parse_command(line) is None


def test_edsel_boxes_in_the_int16_range_are_accepted():
    assert (boxproto.parse_command(boxproto.encode_command("select", (-100, 0, 1, 32767)))
            == ("select", (-100, 0, 1, 32767)))
