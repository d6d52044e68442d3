"""A full disk (ENOSPC part-way through a write, `tests.disk_full`) while the project writes a file: the
previous complete file stays, no temporary file is left, and the error names the file and the reason.

The transcript's case is in tests/test_society_round.py (it needs that module's compiled society);
docs/robustness.md lists every case.
"""

import errno
import json
from pathlib import Path

import pytest

from sandbox_jax.data.jsonl import atomic_write_text
from sandbox_jax.evaluation.compare import compare
from sandbox_jax.pipeline.records import build_records
from sandbox_jax.training.metrics import MetricWriter, read_metrics
from tests.disk_full import fill_disk_on
from tests.test_compare import _results

TRANSCRIPT = Path(__file__).parent / "fixtures" / "society" / "transcript.jsonl"


def _files(directory: Path) -> dict[str, bytes]:
  return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def _assert_names_the_file(error: pytest.ExceptionInfo, path: Path):
  assert error.value.errno == errno.ENOSPC and isinstance(error.value, OSError)
  assert str(path) in str(error.value) and "No space left on device" in str(error.value)


def test_atomic_write_keeps_the_previous_file(tmp_path, monkeypatch):
  path = tmp_path / "out" / "table.md"
  atomic_write_text(path, "the previous complete file\n")
  fill_disk_on(monkeypatch, "table.md", room=7)
  with pytest.raises(OSError) as error:
    atomic_write_text(path, "a new file, longer than the room left on the disk\n")
  _assert_names_the_file(error, path)
  assert "the previous file, if any, is unchanged" in str(error.value)
  assert [p.name for p in path.parent.iterdir()] == ["table.md"]   # no temporary file
  assert path.read_text() == "the previous complete file\n"
  with pytest.raises(OSError):   # a file never written stays absent
    atomic_write_text(tmp_path / "new" / "table.md", "x" * 100)
  assert list((tmp_path / "new").iterdir()) == []


def test_records_keep_the_previous_records(tmp_path, monkeypatch):
  out, half = tmp_path / "records", tmp_path / "half.jsonl"
  lines = TRANSCRIPT.read_text().splitlines(keepends=True)
  half.write_text("".join(lines[:len(lines) // 2]))
  build_records(half, out)
  before = _files(tmp_path)
  fill_disk_on(monkeypatch, "records.jsonl", room=100)
  with pytest.raises(OSError) as error:
    build_records(TRANSCRIPT, out)
  _assert_names_the_file(error, out / "records.jsonl")
  assert _files(tmp_path) == before


def test_report_keeps_the_previous_report(tmp_path, monkeypatch):
  out = tmp_path / "report"
  compare(_results()[:2], out, title="before")
  before = _files(out)
  fill_disk_on(monkeypatch, "report.html", room=4096)
  with pytest.raises(OSError) as error:
    compare(_results(), out, title="after")
  _assert_names_the_file(error, out / "report.html")
  after = _files(out)
  assert after["report.html"] == before["report.html"] and b"before" in after["report.html"]
  assert not [name for name in after if name.endswith(".tmp")]


def test_training_metrics_keep_their_whole_lines_and_resume(tmp_path, monkeypatch):
  writer = MetricWriter(tmp_path)
  writer.write(1, "imitation", {"loss": 2.5})
  fill_disk_on(monkeypatch, "metrics.jsonl", room=20)
  with pytest.raises(OSError) as error:
    writer.write(2, "imitation", {"loss": 2.25})
  _assert_names_the_file(error, tmp_path / "metrics.jsonl")
  assert "metrics of step 2 were not appended" in str(error.value)
  writer.close()
  monkeypatch.undo()
  text = (tmp_path / "metrics.jsonl").read_text()
  assert text.count("\n") == 1 and len(text.split("\n")[1]) == 20   # step 1 whole, then a torn line
  assert [m["step"] for m in read_metrics(tmp_path)] == [1]
  resumed = MetricWriter(tmp_path, resume_step=1)   # the run resumed from its step-1 checkpoint
  resumed.write(2, "imitation", {"loss": 2.25})
  resumed.close()
  assert [(m["step"], m["loss"]) for m in read_metrics(tmp_path)] == [(1, 2.5), (2, 2.25)]
  assert all(json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines())
