"""Make the spatial size of an ONNX graph's inputs free, without the ``onnx`` package.

NanoTrack's backbone files declare a fixed 1x3x255x255 input, but the same backbone embeds the
127 px template: the network is fully convolutional, only the declared shape is fixed, and
onnxruntime refuses any other size. The runtime must not need ``onnx`` (a Pi install stays
small), so this edits the few protobuf fields involved directly in the wire format:

- every graph input's and output's dims 2 and 3 become named (free) dims;
- ``value_info`` (shapes of inner tensors, recorded by the simplifier for 255 px) is dropped, so
  onnxruntime infers them again for the size it is given.

Everything else (nodes, weights, metadata) is copied byte for byte.
"""

from __future__ import annotations

# ONNX field numbers (onnx.proto3).
_MODEL_GRAPH = 7
_GRAPH_INITIALIZER, _GRAPH_INPUT, _GRAPH_OUTPUT, _GRAPH_VALUE_INFO = 5, 11, 12, 13
_TENSOR_NAME = 8
_VALUE_INFO_NAME = 1
_VALUE_INFO_TYPE = 2
_TYPE_TENSOR = 1
_TENSOR_SHAPE = 2
_SHAPE_DIM = 1
_DIM_PARAM = 2

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


class OnnxFormatError(ValueError):
    """The bytes are not an ONNX model this module can edit."""


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise OnnxFormatError("truncated or malformed varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _fields(buf: bytes):
    """Yield (field number, wire type, payload, raw bytes of the whole field)."""
    pos = 0
    while pos < len(buf):
        start = pos
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            payload, pos = _read_varint(buf, pos)
        elif wire == _I64:
            payload, pos = buf[pos:pos + 8], pos + 8
        elif wire == _I32:
            payload, pos = buf[pos:pos + 4], pos + 4
        elif wire == _LEN:
            size, pos = _read_varint(buf, pos)
            payload, pos = buf[pos:pos + size], pos + size
        else:
            raise OnnxFormatError(f"unsupported protobuf wire type {wire}")
        if pos > len(buf):
            raise OnnxFormatError("truncated protobuf field")
        yield number, wire, payload, buf[start:pos]


def _len_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | _LEN) + _varint(len(payload)) + payload


def _rewrite(buf: bytes, number: int, edit) -> bytes:
    """``buf`` with each length-delimited field ``number`` replaced by ``edit(payload)``."""
    out = bytearray()
    for num, wire, payload, raw in _fields(buf):
        out += _len_field(num, edit(payload)) if num == number and wire == _LEN else raw
    return bytes(out)


def _free_shape(shape: bytes, names: tuple[str, str]) -> bytes:
    out, index = bytearray(), 0
    for num, wire, payload, raw in _fields(shape):
        if num == _SHAPE_DIM and wire == _LEN:
            if index in (2, 3):
                raw = _len_field(_SHAPE_DIM, _len_field(_DIM_PARAM, names[index - 2].encode()))
            index += 1
        out += raw
    return bytes(out)


def _free_value_info(value_info: bytes, tag: str) -> bytes:
    names = (f"{tag}_height", f"{tag}_width")
    return _rewrite(value_info, _VALUE_INFO_TYPE, lambda t: _rewrite(
        t, _TYPE_TENSOR, lambda tensor: _rewrite(tensor, _TENSOR_SHAPE, lambda s: _free_shape(s, names))))


def _name(message: bytes, number: int) -> bytes:
    return next((p for n, w, p, _ in _fields(message) if n == number and w == _LEN), b"")


def _free_graph(graph: bytes) -> bytes:
    # Old exporters also list the weights as graph inputs; their shapes stay as they are.
    weights = {_name(p, _TENSOR_NAME) for n, w, p, _ in _fields(graph) if n == _GRAPH_INITIALIZER and w == _LEN}
    out, counts = bytearray(), {_GRAPH_INPUT: 0, _GRAPH_OUTPUT: 0}
    for num, wire, payload, raw in _fields(graph):
        if num == _GRAPH_VALUE_INFO:
            continue
        if num in counts and wire == _LEN and _name(payload, _VALUE_INFO_NAME) not in weights:
            tag = f"{'in' if num == _GRAPH_INPUT else 'out'}{counts[num]}"
            counts[num] += 1
            raw = _len_field(num, _free_value_info(payload, tag))
        out += raw
    if not counts[_GRAPH_INPUT]:
        raise OnnxFormatError("the graph has no inputs")
    return bytes(out)


def free_spatial_dims(model: bytes) -> bytes:
    """The serialized ONNX ``model`` with height and width of every input and output free."""
    graphs = [f for f in _fields(model) if f[0] == _MODEL_GRAPH and f[1] == _LEN]
    if len(graphs) != 1:
        raise OnnxFormatError("not an ONNX model (no graph)")
    return _rewrite(model, _MODEL_GRAPH, _free_graph)
