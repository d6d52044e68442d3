"""JSON Lines reading with `file:line` error locations, and the project's one atomic file write.

Every file the project writes goes through `atomic_write_bytes` / `atomic_write_text` (data,
training metrics, the society's rounds and transcript, stage markers, evaluation reports): the bytes
go to a temporary file in the destination's directory, are flushed and fsynced, then `os.replace`d
over the destination, so a reader (or a resumed run) sees either the old file or the complete new
one, never a torn file. The file gets the usual permissions (0o666 minus the umask), not mkstemp's
private 0o600: outputs are shared. A write that fails (a full disk: ENOSPC, a quota, a permission)
removes the temporary file, leaves the previous file as it was, and raises an OSError of the same
errno that names the destination and the reason.
"""

import json
import os
import pathlib
import tempfile
from typing import Any, Callable, Iterable, Iterator, TypeVar

from sandbox_jax.data.schemas import DataFormatError

T = TypeVar("T")
PathLike = str | os.PathLike


def _umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask


def write_all(fd: int, data: bytes) -> None:
  """`os.write` until every byte is written (a write may be partial)."""
  view = memoryview(data)
  while view:
    view = view[os.write(fd, view):]


def write_error(path: PathLike, error: OSError, what: str) -> OSError:
  """The OSError (same errno, so the same subclass) to raise when writing `path` failed with `error`."""
  return OSError(error.errno, f"{path}: {what} ({error.strerror or error})")


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
  """Writes `data` to `path` atomically (temp file beside it, fsync, rename); creates the parent.

  On failure the temporary file is removed, `path` keeps its previous content (or stays absent),
  and the OSError raised names `path` and the reason (`write_error`).
  """
  path = pathlib.Path(path)
  tmp = None
  try:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
      os.fchmod(fd, 0o666 & ~_umask())
      write_all(fd, data)
      os.fsync(fd)
    finally:
      os.close(fd)
    os.replace(tmp, path)
  except BaseException as e:
    if tmp is not None and os.path.exists(tmp):
      os.unlink(tmp)
    if isinstance(e, OSError):
      raise write_error(path, e, "not written; the previous file, if any, is unchanged") from e
    raise


def atomic_write_text(path: PathLike, text: str) -> None:
  """Writes `text` (UTF-8) to `path` atomically (`atomic_write_bytes`)."""
  atomic_write_bytes(path, text.encode("utf-8"))


def write_jsonl(path: PathLike, objects: Iterable[dict[str, Any]]) -> int:
  """Writes one compact JSON object per line, atomically; returns the number of lines."""
  lines = [json.dumps(obj, ensure_ascii=False) for obj in objects]
  atomic_write_text(path, "".join(line + "\n" for line in lines))
  return len(lines)


def iter_jsonl(path: PathLike, parse: Callable[[Any, str], T]) -> Iterator[T]:
  """Yields `parse(obj, where)` for every non-blank line; `where` is `'<path>:<line>'`.

  Raises DataFormatError naming the file and line for malformed JSON; `parse` raises its own
  DataFormatError (prefixed with `where`) for a well-formed line with bad content.
  """
  path = pathlib.Path(path)
  with path.open("rb") as f:
    for lineno, raw in enumerate(f, start=1):
      where = f"{path}:{lineno}"
      try:
        line = raw.decode("utf-8")
      except UnicodeDecodeError as e:
        raise DataFormatError(f"{where}: not valid UTF-8 (byte {e.start + 1} of the line)") from None
      if not line.strip():
        continue
      try:
        obj = json.loads(line)
      except json.JSONDecodeError as e:
        raise DataFormatError(f"{where}: malformed JSON ({e.msg} at column {e.colno})") from None
      yield parse(obj, where)


def jsonl_files(path: PathLike) -> list[pathlib.Path]:
  """`path` itself if it is a file, else the `*.jsonl` files under it (recursively), sorted."""
  path = pathlib.Path(path)
  if path.is_file():
    return [path]
  if not path.is_dir():
    raise FileNotFoundError(f"{path}: no such file or directory")
  return sorted(p for p in path.rglob("*.jsonl") if p.is_file())
