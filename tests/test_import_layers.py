"""The house imports one way: the command line is the top, and no two parts of edge/ import each other.

A part is a first-level subpackage (edge/runtime) or a top-level module (edge/config.py). Imports are
read from the source with ast, function-level ones included, so a lazy import cannot hide a
back-edge. Imports under ``if TYPE_CHECKING:`` never run and only name types; they are left out.
"""

from __future__ import annotations

from support.imports import import_graph


def _part(module: str) -> str | None:
    bits = module.split(".")
    return bits[1] if len(bits) > 1 else None


def part_edges(graph) -> dict[tuple[str, str], list[str]]:
    """{(part, imported part): ["module:line", ...]} between different parts of edge/."""
    edges: dict[tuple[str, str], list[str]] = {}
    for module, imported in graph.items():
        src = _part(module)
        for name, line in imported:
            dst = _part(name)
            if src and dst and src != dst:
                edges.setdefault((src, dst), []).append(f"{module}:{line}")
    return edges


def cycles(edges) -> list[list[str]]:
    """Strongly connected groups of more than one part (Tarjan), each sorted."""
    succ: dict[str, set[str]] = {}
    for a, b in edges:
        succ.setdefault(a, set()).add(b)
        succ.setdefault(b, set())
    index, low, on_stack, stack, found = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(succ[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(succ):
        if v not in index:
            visit(v)
    return found


def test_nothing_below_the_command_line_imports_it():
    back = [f"{module}:{line} imports {name}" for module, imported in import_graph().items()
            if _part(module) != "cli" for name, line in imported if _part(name) == "cli"]
    assert not back, back


def test_no_two_parts_of_edge_import_each_other_directly_or_round_a_cycle():
    edges = part_edges(import_graph())
    found = cycles(edges)
    detail = {" <-> ".join(group): sorted(f"{a}->{b}: {where[0]}" for (a, b), where in edges.items()
                                          if a in group and b in group) for group in found}
    assert not found, detail


def test_the_checks_see_a_function_level_back_import_and_a_long_cycle(tmp_path):
    # The checks themselves can fail: a lazy import inside a function, a relative import and a
    # three-part cycle are all seen.
    pkg = tmp_path / "edge"
    for sub in ("cli", "runtime", "sim"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "runtime" / "loop.py").write_text("def f():\n    from edge.cli.common import parse_box\n")
    (pkg / "cli" / "device.py").write_text("def g():\n    from ..sim import run\n")
    (pkg / "sim" / "run.py").write_text("from edge.runtime import loop\n")
    (pkg / "sim" / "types.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from edge.cli import device\n")
    graph = import_graph(pkg)
    assert ("edge.cli.common", 2) in graph["edge.runtime.loop"]
    assert ("edge.sim", 2) in graph["edge.cli.device"]
    assert graph["edge.sim.types"] == []
    assert cycles(part_edges(graph)) == [["cli", "runtime", "sim"]]
