"""The CRC-16 variants of the protocols edge-track speaks."""

from __future__ import annotations


def crc16_ccitt(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection (the box protocol)."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def crc16_sbgc(data: bytes) -> int:
    """SimpleBGC serial API v2: poly 0x8005, init 0, each byte's bits fed LSB first."""
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
