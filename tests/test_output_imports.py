"""The outputs sit below the controller: they execute a GimbalCommand, they do not import what makes it."""

from test_import_layers import import_graph


def test_no_output_imports_the_controller():
    back = [f"{module} imports {name}:{line}" for module, imported in import_graph().items()
            if module.startswith("edge.outputs") for name, line in imported if name == "edge.control.controller"]
    assert not back, back


def test_the_old_import_of_the_command_still_works():
    from edge.control.command import GimbalCommand
    from edge.control.controller import GimbalCommand as old

    assert old is GimbalCommand
