"""The optional I/O libraries the outputs import when they open, and how to install each: one
table, named by ``edge.outputs.OUTPUTS`` (``OutputKind.needs``) and read by the outputs' own errors
and by ``edge.runtime.preflight`` (``config check`` and ``run`` refuse a missing one before READY=1,
in the same words). Each is imported only when its output opens, so a Pi without pymavlink still
runs its other outputs. It sits in edge.io, below the outputs, so the serial link can name pyserial."""

from __future__ import annotations

from dataclasses import dataclass

from edge.errors import ConfigError


@dataclass(frozen=True)
class Library:
    module: str    # what the output imports
    dist: str      # the distribution that provides it
    install: str   # how to install that

    def missing(self, who: str, detail: str = "") -> ConfigError:
        """The one line for ``who`` (an output, or outputs[i]) when ``module`` cannot be imported."""
        return ConfigError(f"{who} needs {self.dist}{detail}: {self.install}")


_GIMBAL = "pip install 'edge-track[gimbal]'"
PYSERIAL = Library("serial", "pyserial", _GIMBAL)
# mavutil itself: importing it also gets pymavlink's start-up-time `except:` over with early.
PYMAVLINK = Library("pymavlink.mavutil", "pymavlink", _GIMBAL)
GPIOZERO = Library("gpiozero", "gpiozero", _GIMBAL)
SMBUS2 = Library("smbus2", "smbus2", _GIMBAL)
