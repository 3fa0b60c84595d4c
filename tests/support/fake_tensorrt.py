"""A faithful fake of the TensorRT and pycuda calls edge-track uses, for machines without a GPU.

A "plan" is the ONNX model's bytes; the fake engine runs it with onnxruntime, reading its inputs
from and writing its outputs to simulated device allocations, so tests see exactly what the glue
uploaded, where, and how often. Only the calls named in edge/engines/tensorrt.py and
tensorrt_build.py exist here: anything else the glue tried to call would fail loudly.
"""

from __future__ import annotations

import enum
import itertools
from types import SimpleNamespace

import numpy as np
import onnx
import onnxruntime as ort

# -- pycuda.driver -----------------------------------------------------------------------


class DeviceAllocation:
    _ids = itertools.count(0x1000, 0x1000)

    def __init__(self, nbytes: int) -> None:
        self.address = next(self._ids)
        self.memory = np.zeros(nbytes, np.uint8)
        self.uploads = 0

    def __int__(self) -> int:
        return self.address


class FakeCuda:
    def __init__(self) -> None:
        self.allocations: dict[int, DeviceAllocation] = {}
        self.uploads: list[int] = []     # device address of every host-to-device copy

    def pagelocked_empty(self, size, dtype):
        return np.empty(size, dtype)

    def mem_alloc(self, nbytes):
        alloc = DeviceAllocation(int(nbytes))
        self.allocations[alloc.address] = alloc
        return alloc

    def memcpy_htod_async(self, device, host, stream):
        raw = np.ascontiguousarray(host).view(np.uint8).reshape(-1)
        assert raw.size == device.memory.size, "host and device buffer sizes differ"
        device.memory[:] = raw
        device.uploads += 1
        self.uploads.append(device.address)

    def memcpy_dtoh_async(self, host, device, stream):
        flat = host.reshape(-1).view(np.uint8)
        flat[:] = device.memory

    class Stream:
        handle = 7
        synchronized = 0

        def synchronize(self):
            FakeCuda.Stream.synchronized += 1


# -- tensorrt ------------------------------------------------------------------------------


class TensorIOMode(enum.Enum):
    INPUT = 1
    OUTPUT = 2


class DataType(enum.Enum):
    FLOAT = 0


def _shape(value_info):
    dims = value_info.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.dim_value > 0 else -1 for d in dims)


class FakeEngine:
    def __init__(self, plan: bytes) -> None:
        self.model = onnx.load_from_string(plan)
        self.session = ort.InferenceSession(plan, providers=["CPUExecutionProvider"])
        graph = self.model.graph
        self.io = [(i.name, TensorIOMode.INPUT, _shape(i)) for i in graph.input]
        self.io += [(o.name, TensorIOMode.OUTPUT, _shape(o)) for o in graph.output]
        self.num_io_tensors = len(self.io)

    def get_tensor_name(self, index):
        return self.io[index][0]

    def _entry(self, name):
        return next(e for e in self.io if e[0] == name)

    def get_tensor_mode(self, name):
        return self._entry(name)[1]

    def get_tensor_dtype(self, name):
        return DataType.FLOAT

    def get_tensor_shape(self, name):
        return self._entry(name)[2]

    def create_execution_context(self):
        return FakeContext(self)


class FakeContext:
    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine
        self.input_shapes: dict[str, tuple] = {}
        self.addresses: dict[str, int] = {}
        self.executions = 0

    def set_input_shape(self, name, shape):
        assert self.engine.get_tensor_mode(name) is TensorIOMode.INPUT
        self.input_shapes[name] = tuple(shape)
        return True

    def get_tensor_shape(self, name):
        shape = self.engine.get_tensor_shape(name)
        if self.engine.get_tensor_mode(name) is TensorIOMode.INPUT:
            assert -1 not in self.input_shapes.get(name, shape), f"input shape of {name} never set"
            return self.input_shapes.get(name, shape)
        # Like TensorRT: output shapes are concrete once every input shape is known.
        feeds = {n: np.zeros(self.get_tensor_shape(n), np.float32)
                 for n, mode, _ in self.engine.io if mode is TensorIOMode.INPUT}
        names = [n for n, mode, _ in self.engine.io if mode is TensorIOMode.OUTPUT]
        return dict(zip(names, (v.shape for v in self.engine.session.run(names, feeds))))[name]

    def set_tensor_address(self, name, address):
        self.addresses[name] = int(address)
        return True

    def execute_async_v3(self, stream_handle):
        assert stream_handle == FakeCuda.Stream.handle
        missing = [name for name, _, _ in self.engine.io if name not in self.addresses]
        assert not missing, f"no address bound for {missing}"
        feeds = {}
        for name, mode, _ in self.engine.io:
            if mode is TensorIOMode.INPUT:
                memory = CUDA.allocations[self.addresses[name]].memory
                feeds[name] = memory.view(np.float32).reshape(self.get_tensor_shape(name))
        names = [name for name, mode, _ in self.engine.io if mode is TensorIOMode.OUTPUT]
        for name, value in zip(names, self.engine.session.run(names, feeds)):
            CUDA.allocations[self.addresses[name]].memory[:] = (np.ascontiguousarray(value, np.float32)
                                                                 .view(np.uint8).reshape(-1))
        self.executions += 1
        return True


class FakeRuntime:
    def __init__(self, logger) -> None:
        self.logger = logger

    def deserialize_cuda_engine(self, plan):
        try:
            return FakeEngine(bytes(plan))
        except Exception:
            return None  # TensorRT returns None for a plan it cannot read


class FakeLogger:
    WARNING = 2

    def __init__(self, severity) -> None:
        self.severity = severity


# -- builder -------------------------------------------------------------------------------


def _counted(items: str):
    """TensorRT's pair of accessors for a list (``num_inputs`` and ``get_input(i)``)."""
    return property(lambda self: len(getattr(self, items))), lambda self, i: getattr(self, items)[i]


class FakeNetwork:
    num_inputs, get_input = _counted("inputs")

    def __init__(self) -> None:
        self.inputs = []


class FakeParser:
    def __init__(self, network, logger) -> None:
        self.network = network
        self.errors = []

    def parse(self, data):
        try:
            model = onnx.load_from_string(data)
        except Exception as exc:
            self.errors = [f"cannot parse: {exc}"]
            return False
        self.network.inputs = [SimpleNamespace(name=i.name, shape=_shape(i)) for i in model.graph.input]
        self.network.onnx_bytes = data
        return True

    num_errors, get_error = _counted("errors")


class FakeTimingCache:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def serialize(self):
        return self.data + b"+entry"


class FakeConfig:
    def __init__(self) -> None:
        self.flags, self.pools, self.profiles = set(), {}, []
        self.timing_cache = None

    def set_memory_pool_limit(self, pool, size):
        self.pools[pool] = size

    def set_flag(self, flag):
        self.flags.add(flag)

    def create_timing_cache(self, data):
        return FakeTimingCache(bytes(data))

    def set_timing_cache(self, cache, ignore_mismatch):
        self.timing_cache = cache
        return True

    def get_timing_cache(self):
        return self.timing_cache

    def add_optimization_profile(self, profile):
        self.profiles.append(profile)


class FakeProfile:
    def __init__(self) -> None:
        self.shapes = {}

    def set_shape(self, name, min_shape, opt_shape, max_shape):
        self.shapes[name] = (min_shape, opt_shape, max_shape)


class FakeBuilder:
    platform_has_fast_fp16 = True
    built = []

    def __init__(self, logger) -> None:
        self.logger = logger

    def create_network(self, flags):
        assert flags == 0, "TensorRT 10 accepts only flags 0 (explicit batch is implied)"
        return FakeNetwork()

    def create_builder_config(self):
        return FakeConfig()

    def create_optimization_profile(self):
        return FakeProfile()

    def build_serialized_network(self, network, config):
        FakeBuilder.built.append((network, config))
        return network.onnx_bytes  # the fake runtime "deserializes" the ONNX bytes


def fake_trt_module():
    return SimpleNamespace(
        __version__="10.3.0", Logger=FakeLogger, Runtime=FakeRuntime, TensorIOMode=TensorIOMode,
        nptype=lambda dtype: np.float32, Builder=FakeBuilder, OnnxParser=FakeParser,
        MemoryPoolType=SimpleNamespace(WORKSPACE="workspace"), BuilderFlag=SimpleNamespace(FP16="fp16"),
    )


CUDA = FakeCuda()


def fake_backend():
    from edge.engines.tensorrt import Backend

    global CUDA
    CUDA = FakeCuda()
    return Backend(trt=fake_trt_module(), cuda=CUDA)
