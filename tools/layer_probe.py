"""Which layers of an INT8 model give different answers on different CPUs (x86 vs aarch64).

Three steps, so the middle one runs where only the runtime is installed (the arm64 root
filesystem of ``firmware_scripts/arm64_check.sh``: onnxruntime and numpy, no onnx, no torch)::

    python -m tools.layer_probe build --model M.onnx --sequences DIR --out PROBE   # host, needs onnx
    python -m tools.layer_probe dump --probe PROBE --out layers_<isa>.npz           # each ISA
    python -m tools.layer_probe compare --probe PROBE layers_host.npz layers_arm64.npz

``build`` writes two variants of each graph with every intermediate tensor as a graph output: the
INT8 model itself and an fp32 twin whose MatMul weights are the INT8 weights dequantised (so the
twin differs from the INT8 model only by activation quantisation and the integer kernels), and
the real network inputs the tracker fed on the sample clip. Exposing every tensor stops
onnxruntime fusing DynamicQuantizeLinear + MatMulInteger into DynamicQuantizeMatMul; both run
the same integer GEMM kernels (MLAS), so per-layer differences are the kernels' own.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

VARIANTS = ("int8", "fp32")
GRAPHS = ("contract", "step")


def _dequantized(proto):
    """A copy of a dynamic-INT8 graph with each DynamicQuantizeLinear->MatMulInteger->Cast->Mul
    chain replaced by a float MatMul on the dequantised weights (same output name)."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.ModelProto()
    model.CopyFrom(proto)
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    drop, new_inits, replace = set(), [], {}
    for n in g.node:
        if n.op_type != "MatMulInteger":
            continue
        a_q, w_q, _, w_zp = n.input
        dq = producer[a_q]
        if dq.op_type != "DynamicQuantizeLinear" or w_q not in inits:
            continue
        (cast,) = consumers[n.output[0]]
        (mul,) = consumers[cast.output[0]]
        scale_mul = producer[[i for i in mul.input if i != cast.output[0]][0]]
        w_scale = [i for i in scale_mul.input if i in inits][0]
        w = numpy_helper.to_array(inits[w_q]).astype(np.float32)
        zp = numpy_helper.to_array(inits[w_zp]).astype(np.float32) if w_zp in inits else 0.0
        scale = numpy_helper.to_array(inits[w_scale]).astype(np.float32)
        name = w_q + "_dequantized"
        if name not in inits:
            inits[name] = numpy_helper.from_array((w - zp) * scale, name)
            new_inits.append(inits[name])
        replace[id(n)] = helper.make_node("MatMul", [dq.input[0], name], [mul.output[0]], name=n.name + "_fp32")
        drop.update({id(cast), id(mul)})
    nodes = [replace.get(id(n), n) for n in g.node if id(n) not in drop]
    g.initializer.extend(new_inits)
    del g.node[:]
    g.node.extend(nodes)
    _prune(g)
    return model


def _prune(g) -> None:
    """Drop nodes nothing reads any more (the quantize and scale nodes of replaced chains)."""
    while True:
        used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
        keep = [n for n in g.node if any(o in used for o in n.output)]
        if len(keep) == len(g.node):
            used = {i for n in g.node for i in n.input}
            inits = [i for i in g.initializer if i.name in used]
            del g.initializer[:]
            g.initializer.extend(inits)
            return
        del g.node[:]
        g.node.extend(keep)


def _expose_all(proto):
    """Every node output with an inferred type becomes a graph output, in graph order."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(proto)
    types = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    have = {o.name for o in proto.graph.output}
    for n in proto.graph.node:
        for o in n.output:
            if o and o not in have and o in types:
                proto.graph.output.append(types[o])
                have.add(o)
    return proto


def _tracker_inputs(model: str, sequences: str, frames=(1, 30, 60)):
    """The template pair and a few search crops the tracker really feeds on the first sequence."""
    from edge.camera.folder import read_rgb
    from edge.engines import open_engine
    from edge.evaluation.datasets import find_sequences
    from edge.trackers.mixformer import MixFormerTracker

    class Recorder:
        def __init__(self, engine):
            self.engine, self.meta, self.name = engine, engine.meta, engine.name
            self.templates, self.searches = None, []

        def set_templates(self, template, online_template):
            if self.templates is None:
                self.templates = (template.copy(), online_template.copy())
            self.engine.set_templates(template, online_template)

        def run(self, search):
            self.searches.append(search.copy())
            return self.engine.run(search)

        def close(self):
            self.engine.close()

    seq = find_sequences(sequences)[0]
    rec = Recorder(open_engine(model, threads=1))
    tracker = MixFormerTracker(rec)
    tracker.init(read_rgb(seq.frames[0]), seq.gt[0])
    for path in seq.frames[1:max(frames) + 1]:
        tracker.update(read_rgb(path))
    feeds = {"template": rec.templates[0], "online_template": rec.templates[1]}
    for k, f in enumerate(frames):
        feeds[f"search_{k}"] = rec.searches[f - 1]
    return feeds


def dequantize(model: str, output: str) -> None:
    """A runnable fp32 model pair (with metadata) from a dynamic-INT8 one: a stand-in for the
    fp32 export when only the INT8 file is at hand, e.g. to try other quantisation settings."""
    import onnx

    from edge.engines.model_meta import step_path_for
    from train.export.onnx_files import load_with_meta, save_together, set_meta

    proto, meta = load_with_meta(model)
    step_out = step_path_for(output) if meta.step_file else None
    new_meta = meta.replace(precision="fp32", step_file=os.path.basename(step_out) if step_out else "")
    files = {output: _dequantized(proto)}
    if step_out:
        files[step_out] = _dequantized(onnx.load(step_path_for(model)))
    for p in files.values():
        del p.metadata_props[:]
    save_together({path: set_meta(p, new_meta) for path, p in files.items()})


def build(model: str, sequences: str, out: str) -> None:
    import onnx

    from edge.engines.model_meta import step_path_for

    os.makedirs(out, exist_ok=True)
    graphs = {"contract": model}
    if os.path.isfile(step_path_for(model)):
        graphs["step"] = step_path_for(model)
    order = {}
    for role, path in graphs.items():
        proto = onnx.load(path)
        del proto.metadata_props[:]
        for variant, p in (("int8", proto), ("fp32", _dequantized(proto))):
            exposed = _expose_all(p)
            order[f"{variant}/{role}"] = [o.name for o in exposed.graph.output]
            onnx.save(exposed, os.path.join(out, f"{variant}_{role}.onnx"))
            # Op type per tensor, for the per-op-type summary.
            order[f"{variant}/{role}/ops"] = {o: n.op_type for n in exposed.graph.node for o in n.output}
    np.savez(os.path.join(out, "inputs.npz"), **_tracker_inputs(model, sequences))
    with open(os.path.join(out, "probe.json"), "w", encoding="utf-8") as f:
        json.dump(order, f)


def dump(probe: str, out: str) -> None:
    """Run both variants on the recorded inputs with onnxruntime alone; every tensor to ``out``."""
    import onnxruntime as ort

    inputs = dict(np.load(os.path.join(probe, "inputs.npz")))
    searches = sorted(k for k in inputs if k.startswith("search_"))
    result = {}
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    for variant in VARIANTS:
        contract = ort.InferenceSession(os.path.join(probe, f"{variant}_contract.onnx"), opts,
                                        providers=["CPUExecutionProvider"])
        step_file = os.path.join(probe, f"{variant}_step.onnx")
        step = ort.InferenceSession(step_file, opts, providers=["CPUExecutionProvider"]) \
            if os.path.isfile(step_file) else None
        names = [o.name for o in contract.get_outputs()]
        for s in searches:
            outs = contract.run(None, {"template": inputs["template"], "online_template": inputs["online_template"],
                                       "search": inputs[s]})
            got = dict(zip(names, outs))
            for name, value in got.items():
                result[f"{variant}/contract/{s}/{name}"] = value
            if step is not None:
                kv = got["template_kv"]
                for name, value in zip([o.name for o in step.get_outputs()],
                                       step.run(None, {"search": inputs[s], "template_kv": kv})):
                    result[f"{variant}/step/{s}/{name}"] = value
    np.savez_compressed(out, **{k.replace("/", "|"): v for k, v in result.items()})


def _load(path: str) -> dict:
    return {k.replace("|", "/"): v for k, v in np.load(path).items()}


def rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / ||b||, in float64 (0 when both are zero)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    denom = np.linalg.norm(b)
    diff = np.linalg.norm(a - b)
    return float(diff / denom) if denom > 0 else float(diff)


def exact_integer_gemms(probe: str, dumped: dict) -> tuple[int, int]:
    """(exact, total) over the INT8 graphs' MatMulInteger nodes and the dumped search crops."""
    import onnx
    from onnx import numpy_helper

    exact = total = 0
    for role in GRAPHS:
        path = os.path.join(probe, f"int8_{role}.onnx")
        if not os.path.isfile(path):
            continue
        g = onnx.load(path).graph
        inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        searches = sorted({k.split("/")[2] for k in dumped if k.startswith(f"int8/{role}/")})
        for n in g.node:
            if n.op_type != "MatMulInteger" or n.input[1] not in inits:
                continue
            w = inits[n.input[1]].astype(np.int64)
            if len(n.input) > 3 and n.input[3] in inits:
                w = w - inits[n.input[3]].astype(np.int64)
            for s in searches:
                key = f"int8/{role}/{s}/"
                if key + n.output[0] not in dumped:
                    continue
                a = dumped[key + n.input[0]].astype(np.int64) - int(dumped[key + n.input[2]])
                total += 1
                exact += bool(np.array_equal(np.matmul(a, w), dumped[key + n.output[0]]))
    return exact, total


def compare(probe: str, host: str, other: str, threshold: float = 1e-4) -> str:
    """Markdown: per graph and variant, the first tensors that differ between the two dumps and
    the largest differences, and INT8 vs fp32 on each side at the outputs."""
    with open(os.path.join(probe, "probe.json"), encoding="utf-8") as f:
        order = json.load(f)
    a, b = _load(host), _load(other)
    searches = sorted({k.split("/")[2] for k in a})
    lines = ["# Per-layer comparison: host vs other ISA", "",
             f"rel = ||host - other|| / ||other||, max over {len(searches)} search crops; "
             f"'differs' = rel > {threshold:g}.", ""]
    for variant in VARIANTS:
        for role in GRAPHS:
            key = f"{variant}/{role}"
            if key not in order:
                continue
            ops = order[key + "/ops"]
            rows = []
            for name in order[key]:
                vals = [rel_diff(a[f"{key}/{s}/{name}"], b[f"{key}/{s}/{name}"])
                        for s in searches if f"{key}/{s}/{name}" in a and f"{key}/{s}/{name}" in b]
                if vals:
                    rows.append((name, ops.get(name, "output"), max(vals)))
            # Graph order: the model's own outputs come first in the output list but last in the graph.
            position = {name: k for k, name in enumerate(ops)}
            rows.sort(key=lambda r: position.get(r[0], len(position)))
            differing = [r for r in rows if r[2] > threshold]
            lines += [f"## {variant} {role} graph: {len(differing)} of {len(rows)} tensors differ", ""]
            if differing:
                lines += ["first to differ (graph order):", "", "| tensor | op | rel |", "|---|---|---|"]
                lines += [f"| {n} | {op} | {r:.2e} |" for n, op, r in differing[:8]]
                by_op: dict[str, int] = {}
                for _, op, _ in differing:
                    by_op[op] = by_op.get(op, 0) + 1
                lines += ["", "differing tensors by op type: "
                          + ", ".join(f"{op} {k}" for op, k in sorted(by_op.items(), key=lambda x: -x[1])), ""]
            outs = [r for r in rows if r[0] in ("pred_boxes", "pred_scores", "template_kv")]
            lines += ["outputs: " + ", ".join(f"{n} {r:.2e}" for n, _, r in outs), ""]
    exact = {side: exact_integer_gemms(probe, d) for side, d in (("host", a), ("other", b))}
    lines += ["## Integer GEMMs equal to the exact integer product (numpy)", "",
              f"host {exact['host'][0]} of {exact['host'][1]}, other {exact['other'][0]} of {exact['other'][1]} "
              "(MatMulInteger nodes x search crops). Fewer than all: that CPU's kernel saturates.", ""]
    lines += ["## INT8 vs its fp32 twin at the outputs (rel)", "",
              "| graph | output | host | other |", "|---|---|---|---|"]
    for role in GRAPHS:
        for name in ("pred_boxes", "pred_scores", "template_kv"):
            ka = [f"int8/{role}/{s}/{name}" for s in searches]
            if not all(k in a and k.replace("int8", "fp32", 1) in a for k in ka):
                continue
            host_r = max(rel_diff(a[k], a[k.replace("int8", "fp32", 1)]) for k in ka)
            other_r = max(rel_diff(b[k], b[k.replace("int8", "fp32", 1)]) for k in ka)
            lines.append(f"| {role} | {name} | {host_r:.2e} | {other_r:.2e} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.layer_probe", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--model", required=True)
    b.add_argument("--sequences", required=True)
    b.add_argument("--out", required=True)
    d = sub.add_parser("dump")
    d.add_argument("--probe", required=True)
    d.add_argument("--out", required=True)
    q = sub.add_parser("dequantize")
    q.add_argument("--model", required=True)
    q.add_argument("--out", required=True)
    c = sub.add_parser("compare")
    c.add_argument("--probe", required=True)
    c.add_argument("host")
    c.add_argument("other")
    args = p.parse_args(argv)
    try:
        if args.cmd == "build":
            build(args.model, args.sequences, args.out)
        elif args.cmd == "dequantize":
            dequantize(args.model, args.out)
        elif args.cmd == "dump":
            dump(args.probe, args.out)
        else:
            sys.stdout.write(compare(args.probe, args.host, args.other))
    except (OSError, KeyError, ValueError) as exc:
        print(f"layer_probe: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
