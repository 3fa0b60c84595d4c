"""The outputs sit below the controller: they execute a GimbalCommand, they do not import what makes it."""


from support.imports import import_graph
from support.paths import REPO


def test_no_output_imports_the_controller():
    back = [f"{module} imports {name}:{line}" for module, imported in import_graph().items()
            if module.startswith("edge.outputs") for name, line in imported if name == "edge.control.controller"]
    assert not back, back


def test_the_command_has_one_home():
    """Everything takes GimbalCommand from edge.control.command, nothing through the controller."""
    via = [f"{path.relative_to(REPO)}:{n}" for part in ("edge", "calib", "train", "tests")
           for path in sorted((REPO / part).rglob("*.py"))
           for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
           if text.lstrip().startswith("from edge.control.controller import") and "GimbalCommand" in text]
    assert not via, via
