"""TensorRT engine for Jetson (the B model's home), with pycuda for memory and streams.

The ``.engine`` file written by ``edge-track build-trt`` is self-describing: an 8-byte magic, a
little-endian uint32 header length, a JSON header (the edge-track metadata and where each plan
sits), then the serialized TensorRT plans: ``contract`` and, for cached models, ``step``.

Everything TensorRT- or CUDA-specific goes through the small ``backend`` seam (``trt`` and
``cuda`` modules), so the glue is tested on machines without a GPU against a faithful fake of
the few calls used: Runtime.deserialize_cuda_engine, the engine's named I/O tensors
(num_io_tensors, get_tensor_name/mode/dtype/shape), create_execution_context,
set_input_shape, set_tensor_address, execute_async_v3; pycuda's pagelocked_empty, mem_alloc,
memcpy_htod_async/dtoh_async and Stream.

Buffers are allocated once. With the template cache, the contract plan's ``template_kv`` output
and the step plan's ``template_kv`` input are the same device buffer: a template update writes
the cache on the GPU, and a frame uploads only the search crop.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass

import numpy as np

from edge.engines.base import EngineOutput
from edge.engines.model_meta import KV_NAME, ModelMeta
from edge.errors import ModelError, clipped

MAGIC = b"EDGETRT1"


@dataclass
class Backend:
    trt: object
    cuda: object


def tensorrt_available() -> bool:
    try:
        import pycuda.driver  # noqa: F401
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return True


def load_backend() -> Backend:
    try:
        import tensorrt as trt
    except ImportError:
        raise ModelError("the tensorrt engine needs TensorRT (on Jetson: JetPack's python3-libnvinfer, "
                         "in a venv made with --system-site-packages)") from None
    try:
        import pycuda.autoinit  # noqa: F401  (creates the CUDA context)
        import pycuda.driver as cuda
    except ImportError:
        raise ModelError("the tensorrt engine needs pycuda: pip install 'edge-track[jetson]'") from None
    return Backend(trt=trt, cuda=cuda)


# -- the file format ------------------------------------------------------------------------
def write_engine_file(path: str, meta: ModelMeta, plans: dict[str, bytes]) -> None:
    sections, offset = [], 0
    for role, plan in plans.items():
        sections.append({"role": role, "offset": offset, "size": len(plan)})
        offset += len(plan)
    header = json.dumps({"meta": json.loads(meta.to_json()), "plans": sections}).encode("utf-8")
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        f.write(MAGIC + struct.pack("<I", len(header)) + header)
        for plan in plans.values():
            f.write(plan)
    os.replace(tmp, path)


def read_engine_file(path: str) -> tuple[ModelMeta, dict[str, bytes]]:
    if not os.path.isfile(path):
        raise ModelError(f"model file not found: {path}")
    with open(path, "rb") as f:
        data = f.read()
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 4:
        raise ModelError(f"{path} is not an edge-track TensorRT engine (build it with 'edge-track build-trt')")
    (length,) = struct.unpack_from("<I", data, len(MAGIC))
    start = len(MAGIC) + 4
    try:
        header = json.loads(data[start:start + length].decode("utf-8"))
        meta = ModelMeta.from_json(json.dumps(header["meta"]), source=path)
        body = start + length
        plans = {s["role"]: data[body + s["offset"]: body + s["offset"] + s["size"]] for s in header["plans"]}
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise ModelError(f"{path}: damaged engine header ({clipped(str(exc), 80)})") from None
    if "contract" not in plans or any(len(p) == 0 for p in plans.values()):
        raise ModelError(f"{path}: engine file holds no contract plan or an empty plan")
    return meta, plans


# -- one plan with its buffers --------------------------------------------------------------
class _Plan:
    """A deserialized plan, its execution context, and one host+device buffer per I/O tensor."""

    def __init__(self, backend: Backend, runtime, plan: bytes, role: str, shared: dict) -> None:
        trt, cuda = backend.trt, backend.cuda
        self.cuda = cuda
        self.engine = runtime.deserialize_cuda_engine(plan)
        if self.engine is None:
            raise ModelError(f"TensorRT could not deserialize the {role} plan (built for another "
                             f"GPU or TensorRT version? rebuild it on this device)")
        self.context = self.engine.create_execution_context()
        self.inputs, self.outputs = {}, {}
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        for name in names:
            if self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                shape = tuple(self.engine.get_tensor_shape(name))
                if shape and shape[0] == -1:  # dynamic batch from the ONNX export: run batch 1
                    self.context.set_input_shape(name, (1, *shape[1:]))
        for name in names:
            shape = tuple(self.context.get_tensor_shape(name))
            dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(name)))
            is_input = self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            if name == KV_NAME and name in shared:
                host, device = shared[name]           # the cache lives on the GPU, shared by both plans
            else:
                host = cuda.pagelocked_empty(int(np.prod(shape)), dtype).reshape(shape)
                device = cuda.mem_alloc(host.nbytes)
                if name == KV_NAME:
                    shared[name] = (host, device)
            self.context.set_tensor_address(name, int(device))
            (self.inputs if is_input else self.outputs)[name] = (host, device)

    def upload(self, name: str, array: np.ndarray, stream) -> None:
        host, device = self.inputs[name]
        np.copyto(host, array.reshape(host.shape))
        self.cuda.memcpy_htod_async(device, host, stream)

    def execute(self, stream, fetch) -> dict[str, np.ndarray]:
        if not self.context.execute_async_v3(stream.handle):
            raise ModelError("TensorRT execution failed")
        for name in fetch:
            host, device = self.outputs[name]
            self.cuda.memcpy_dtoh_async(host, device, stream)
        stream.synchronize()
        return {name: self.outputs[name][0] for name in fetch}


class TensorRTEngine:
    """Runs an edge-track TensorRT engine file.

    Args:
        path: ``.engine`` file from ``edge-track build-trt``.
        backend: the trt/cuda seam; None loads the real libraries.
        use_cache: False runs the contract plan every frame (for comparisons).
    """

    def __init__(self, path: str, *, backend: Backend | None = None, use_cache: bool = True,
                 threads: int | None = None) -> None:
        self.meta, plans = read_engine_file(path)
        self.backend = backend or load_backend()
        trt = self.backend.trt
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._stream = self.backend.cuda.Stream()
        shared: dict = {}
        self._contract = _Plan(self.backend, self._runtime, plans["contract"], "contract", shared)
        self._step = None
        if use_cache and "step" in plans:
            self._step = _Plan(self.backend, self._runtime, plans["step"], "step", shared)
        self.path = path
        self.name = f"tensorrt-{self.meta.precision}-{'cached' if self._step else 'full'}"
        self._blank_search = np.zeros((1, 3, self.meta.search_size, self.meta.search_size), np.float32)
        self._ready = False

    def set_templates(self, template: np.ndarray, online_template: np.ndarray) -> None:
        plan = self._contract
        plan.upload("template", template, self._stream)
        plan.upload("online_template", online_template, self._stream)
        if self._step is not None:
            plan.upload("search", self._blank_search, self._stream)
            plan.execute(self._stream, fetch=[])     # writes template_kv in place on the GPU
        self._ready = True

    def run(self, search: np.ndarray) -> EngineOutput:
        if not self._ready:
            raise RuntimeError("set_templates() must be called before run()")
        plan = self._step or self._contract
        plan.upload("search", search, self._stream)
        out = plan.execute(self._stream, fetch=["pred_boxes", "pred_scores"])
        return EngineOutput(np.array(out["pred_boxes"], np.float32).reshape(-1, 4)[0],
                            float(np.asarray(out["pred_scores"]).reshape(-1)[0]))

    def close(self) -> None:
        self._contract = self._step = None
        self._ready = False
