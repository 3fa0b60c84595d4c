"""A disk that fills up, and reading back what landed on it."""

import errno
import json


def whole_json_lines(path):
    data = open(path, "rb").read()
    assert data == b"" or data.endswith(b"\n"), data[-80:]
    return [json.loads(line) for line in data.splitlines()]


class FillingDisk:
    """A real file on a disk that fills up after ``capacity`` bytes: the write that crosses it
    lands partly (as write(2) does), then ENOSPC, until ``capacity`` is raised again."""

    def __init__(self, path, capacity):
        self.capacity = capacity
        self.f = open(path, "ab", buffering=0)
        self.failures = 0

    def size(self) -> int:
        """How much of the disk the file takes (where the next write lands)."""
        return self.f.tell()

    def write(self, data):
        room = self.capacity - self.size()
        if len(data) > room:
            self.failures += 1
            if room > 0:
                self.f.write(data[:room])
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)
