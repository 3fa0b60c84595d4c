"""The import graph of a package, read from its source with ast (function-level imports included,
so a lazy import cannot hide a back-edge; imports under ``if TYPE_CHECKING:`` never run and are
left out)."""

from __future__ import annotations

import ast
from pathlib import Path

from support.paths import REPO

EDGE = REPO / "edge"


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_package: bool):
    """(imported module name, line) for every executed import in the tree, relative ones resolved."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                # `from edge import config` imports the part edge.config
                yield (f"{target}.{alias.name}" if target == "edge" else target), node.lineno
        stack.extend(ast.iter_child_nodes(node))


def import_graph(root: Path = EDGE):
    """{module: [(imported edge module, line), ...]} for every module under ``root``."""
    graph = {}
    for path in sorted(root.rglob("*.py")):
        module = _module_name(path, root)
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        graph[module] = [(name, line) for name, line in _imports(tree, module, path.name == "__init__.py")
                         if name == root.name or name.startswith(root.name + ".")]
    return graph
