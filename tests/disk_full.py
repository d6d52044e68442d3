"""A disk that fills up while one file is written, for the ENOSPC tests.

`fill_disk_on(monkeypatch, name, room)` patches `os.write`: writes to the file `name` — or to its
temporary file `.name.*.tmp` (`data.jsonl.atomic_write_bytes`) — store at most `room` more bytes in
all (a partial write, as on a real full disk), then fail with ENOSPC. Other files write normally.
The file a descriptor refers to is read from /proc/self/fd (Linux).
"""

import errno
import os

import pytest


def fill_disk_on(monkeypatch, name: str, room: int = 16) -> None:
  if not os.path.isdir("/proc/self/fd"):
    pytest.skip("needs /proc/self/fd (Linux) to tell which file a write goes to")
  real_write = os.write
  left = [room]

  def write(fd, data):
    base = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
    if base != name and not (base.startswith(f".{name}.") and base.endswith(".tmp")):
      return real_write(fd, data)
    if left[0] == 0:
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    written = real_write(fd, bytes(memoryview(data)[:left[0]]))
    left[0] -= written
    return written

  monkeypatch.setattr(os, "write", write)
