"""Hardware seams: pty pairs for serial heads, free loopback ports, an I2C bus that loses power."""

import os
import socket
import time

import pytest


class FlakySMBus:
    """smbus2's SMBus seam: writes recorded; while ``unplugged`` every write fails as an unpowered board does."""

    def __init__(self, unplugged=False):
        self.writes, self.unplugged, self.closed = [], unplugged, False

    def _record(self, entry):
        if self.unplugged:
            raise OSError(121, "Remote I/O error")
        self.writes.append(entry)

    def write_byte_data(self, addr, reg, value):
        self._record((addr, reg, value))

    def write_i2c_block_data(self, addr, reg, data):
        self._record((addr, reg, list(data)))

    def close(self):
        self.closed = True


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Pty:
    """A pseudo-terminal pair; the output opens the slave by name, the test reads the master."""

    def __init__(self, tmp_path, name="tty"):
        # Whatever opens the other end is a serial output, which needs pyserial.
        pytest.importorskip("serial", reason="needs pyserial (pip install 'edge-track[gimbal]')")
        self.master, slave = os.openpty()
        self.slave_name = os.ttyname(slave)
        os.close(slave)
        self.link = str(tmp_path / name)
        os.symlink(self.slave_name, self.link)
        os.set_blocking(self.master, False)

    def read(self, wait=0.2) -> bytes:
        deadline, data = time.monotonic() + wait, b""
        while time.monotonic() < deadline:
            try:
                chunk = os.read(self.master, 4096)
            except BlockingIOError:
                time.sleep(0.01)
                continue
            except OSError:           # EIO: the slave side is closed and everything was read
                break
            data += chunk
        return data

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self):
        os.close(self.master)
        os.remove(self.link)


def free_tcp_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
