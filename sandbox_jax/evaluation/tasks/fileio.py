"""Reading the public file formats (CSV, JSON, JSONL, gzip) with errors that name file and line."""

import csv
import gzip
import io
import json
import pathlib
import zlib
from collections.abc import Iterator

from sandbox_jax.evaluation.tasks.doc import TaskFormatError

_GZIP_MAGIC = b"\x1f\x8b"


def open_text(path):
  """The UTF-8 text of a file as a text stream, transparently gunzipped when it starts with the gzip
  magic. The whole file is decoded up front, so a truncated gzip stream or invalid UTF-8 is one
  TaskFormatError naming the file (and the line of the first bad byte), never a decoder's error
  halfway through reading."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"{path}: no such file")
  data = path.read_bytes()
  if data[:2] == _GZIP_MAGIC:
    try:
      data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
      raise TaskFormatError(path, "", f"corrupt or truncated gzip file: {e}") from None
  try:
    text = data.decode("utf-8")
  except UnicodeDecodeError as e:
    line = data[:e.start].count(b"\n") + 1
    raise TaskFormatError(path, f"line {line}", f"not valid UTF-8 (byte {e.start})") from None
  return io.StringIO(text, newline="")


def read_json(path):
  """Parses a whole JSON file."""
  with open_text(path) as f:
    try:
      return json.load(f)
    except json.JSONDecodeError as e:
      raise TaskFormatError(path, f"line {e.lineno}", f"invalid JSON: {e.msg}") from None


def read_jsonl(path) -> Iterator[tuple[int, dict]]:
  """Yields (line number, object) for each non-blank line of a JSON-lines file (plain or .gz)."""
  with open_text(path) as f:
    for line_no, line in enumerate(f, start=1):
      if not line.strip():
        continue
      try:
        row = json.loads(line)
      except json.JSONDecodeError as e:
        raise TaskFormatError(path, f"line {line_no}", f"invalid JSON: {e.msg}") from None
      if not isinstance(row, dict):
        raise TaskFormatError(path, f"line {line_no}", f"expected a JSON object, got {type(row).__name__}")
      yield line_no, row


def read_csv_rows(path, required: tuple[str, ...]) -> Iterator[tuple[str, dict]]:
  """Yields (location, row dict) for a CSV with a header holding at least the `required` columns.

  The location reads "row N (line L)": N counts data rows from 1, L is the file line the row ends on.
  """
  with open_text(path) as f:
    reader = csv.reader(f)
    try:
      header = next(reader)
    except StopIteration:
      raise TaskFormatError(path, "line 1", "empty file, expected a CSV header") from None
    except csv.Error as e:
      raise TaskFormatError(path, "line 1", f"bad CSV: {e}") from None
    missing = [c for c in required if c not in header]
    if missing:
      raise TaskFormatError(path, "line 1", f"header {header} lacks columns {missing}")
    row_no = 0
    while True:
      try:
        values = next(reader)
      except StopIteration:
        return
      except csv.Error as e:
        raise TaskFormatError(path, f"line {reader.line_num}", f"bad CSV: {e}") from None
      if not values:
        continue
      row_no += 1
      where = f"row {row_no} (line {reader.line_num})"
      if len(values) != len(header):
        raise TaskFormatError(path, where, f"{len(values)} fields, header has {len(header)}")
      yield where, dict(zip(header, values))


def read_headerless_csv(path, n_columns: int) -> Iterator[tuple[str, list[str]]]:
  """Yields (location, fields) for a CSV without a header whose rows have exactly `n_columns`."""
  with open_text(path) as f:
    reader = csv.reader(f)
    row_no = 0
    while True:
      try:
        values = next(reader)
      except StopIteration:
        return
      except csv.Error as e:
        raise TaskFormatError(path, f"line {reader.line_num}", f"bad CSV: {e}") from None
      if not values:
        continue
      row_no += 1
      where = f"row {row_no} (line {reader.line_num})"
      if len(values) != n_columns:
        raise TaskFormatError(path, where, f"{len(values)} fields, expected {n_columns}")
      yield where, values


def parse_label(path, where: str, value: str, allowed=(0, 1)) -> int:
  """An integer label from a CSV cell, checked against `allowed`."""
  try:
    label = int(value.strip())
  except ValueError:
    raise TaskFormatError(path, where, f"label {value!r} is not an integer") from None
  if label not in allowed:
    raise TaskFormatError(path, where, f"label {label} not in {list(allowed)}")
  return label


def require_str(path, where: str, row: dict, key: str) -> str:
  """A string field of a JSON object, required present."""
  value = row.get(key)
  if not isinstance(value, str):
    raise TaskFormatError(path, where, f"field {key!r} missing or not a string")
  return value
