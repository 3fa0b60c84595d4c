"""The CRC-16 variants of the protocols edge-track speaks."""

from __future__ import annotations

import binascii


def crc16_ccitt(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection (the box protocol).

    binascii.crc_hqx is the same polynomial and bit order (it is XMODEM when started at 0), in C.
    """
    return binascii.crc_hqx(data, crc)


def crc16_sbgc(data: bytes) -> int:
    """SimpleBGC serial API v2: poly 0x8005, init 0, each byte's bits fed LSB first.

    No stdlib routine computes it: crc_hqx has another polynomial and binascii.crc32 another width.
    """
    crc = 0
    for byte in data:
        bit = 1
        while bit < 0x100:
            data_bit = 1 if byte & bit else 0
            crc_bit = crc >> 15
            crc = (crc << 1) & 0xFFFF
            if data_bit != crc_bit:
                crc ^= 0x8005
            bit <<= 1
    return crc
