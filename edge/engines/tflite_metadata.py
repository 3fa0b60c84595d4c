"""Read the ``metadata`` entries of a .tflite file without any flatbuffers dependency.

A TFLite model is a flatbuffer ``Model`` table whose field 4 is ``buffers: [Buffer]`` and field 6
``metadata: [Metadata{name: string, buffer: uint}]``; a Buffer holds ``data: [ubyte]`` (field 0),
or, in files over 2 GB, an ``offset``/``size`` pair (fields 1 and 2) into the file. Reading those
few fields by hand keeps the runtime free of the schema package.
"""

from __future__ import annotations

import struct

_MODEL_BUFFERS, _MODEL_METADATA = 4, 6


class _Reader:
    def __init__(self, buf: bytes) -> None:
        self.buf = buf

    def u16(self, pos): return struct.unpack_from("<H", self.buf, pos)[0]
    def u32(self, pos): return struct.unpack_from("<I", self.buf, pos)[0]
    def i32(self, pos): return struct.unpack_from("<i", self.buf, pos)[0]
    def u64(self, pos): return struct.unpack_from("<Q", self.buf, pos)[0]

    def field(self, table: int, index: int) -> int | None:
        """Absolute position of a table's field, or None when absent."""
        vtable = table - self.i32(table)
        slot = 4 + 2 * index
        if slot >= self.u16(vtable):
            return None
        offset = self.u16(vtable + slot)
        return table + offset if offset else None

    def deref(self, pos: int) -> int:
        return pos + self.u32(pos)

    def vector(self, pos: int) -> tuple[int, int]:
        start = self.deref(pos)
        return start + 4, self.u32(start)

    def string(self, pos: int) -> str:
        start, n = self.vector(pos)
        return self.buf[start:start + n].decode("utf-8")


def read_metadata(buf: bytes) -> dict[str, bytes]:
    """{name: bytes} of every metadata entry; {} if the model has none."""
    r = _Reader(buf)
    root = r.u32(0)
    meta_pos, buffers_pos = r.field(root, _MODEL_METADATA), r.field(root, _MODEL_BUFFERS)
    if meta_pos is None or buffers_pos is None:
        return {}
    entries, count = r.vector(meta_pos)
    buffers, _ = r.vector(buffers_pos)
    out = {}
    for i in range(count):
        entry = r.deref(entries + 4 * i)
        name_pos, index_pos = r.field(entry, 0), r.field(entry, 1)
        if name_pos is None:
            continue
        index = r.u32(index_pos) if index_pos is not None else 0
        buffer = r.deref(buffers + 4 * index)
        data_pos = r.field(buffer, 0)
        if data_pos is not None:
            start, n = r.vector(data_pos)
            data = buf[start:start + n]
        else:
            off_pos, size_pos = r.field(buffer, 1), r.field(buffer, 2)
            offset = r.u64(off_pos) if off_pos is not None else 0
            size = r.u64(size_pos) if size_pos is not None else 0
            data = buf[offset:offset + size]
        out[r.string(name_pos)] = bytes(data)
    return out
