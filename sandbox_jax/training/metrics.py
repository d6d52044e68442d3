"""Metric writers: one JSON object per line in `<workdir>/metrics.jsonl`, and TensorBoard events.

Each JSONL line is appended with one `write` to an O_APPEND descriptor (no buffer), so a killed run
leaves whole lines; only a write that fails part-way (a full disk) can leave a torn last line, and
the error then names the file and the step. On resume from step k the file is first rewritten
(atomically) without the lines of steps after k — steps the killed run did but the checkpoint does
not hold — and without a torn last line, so the file always describes the run that the
checkpoints continue. Only process 0 writes.
"""

import json
import os
import time
from pathlib import Path

import jax

from sandbox_jax.data import atomic_write_text
from sandbox_jax.data.jsonl import write_all, write_error

METRICS_FILE = "metrics.jsonl"


def read_metrics(workdir: str | Path) -> list[dict]:
  path = Path(workdir) / METRICS_FILE
  if not path.is_file():
    return []
  whole = path.read_text(encoding="utf-8").split("\n")[:-1]   # not a torn last line (see MetricWriter)
  return [json.loads(line) for line in whole if line.strip()]


class MetricWriter:
  def __init__(self, workdir: str | Path, resume_step: int = 0):
    self.path = Path(workdir) / METRICS_FILE
    self.enabled = jax.process_index() == 0
    self._fd = self._tb = None
    if not self.enabled:
      return
    from tensorboardX import SummaryWriter   # slow to import: only where it writes
    if self.path.exists():
      whole = self.path.read_text(encoding="utf-8").split("\n")[:-1]   # a torn last line has no newline
      kept = [line for line in whole if line.strip() and json.loads(line).get("step", 0) <= resume_step]
      atomic_write_text(self.path, "".join(line + "\n" for line in kept))
    self.path.parent.mkdir(parents=True, exist_ok=True)
    self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    self._tb = SummaryWriter(str(Path(workdir) / "tensorboard"))

  def write(self, step: int, stage: str, metrics: dict, prefix: str = "train") -> None:
    if not self.enabled:
      return
    line = {"step": step, "stage": stage, "time": round(time.time(), 3)}
    line.update({f"{prefix}/{k}" if prefix != "train" else k: v for k, v in metrics.items()})
    try:
      write_all(self._fd, (json.dumps(line) + "\n").encode("utf-8"))
    except OSError as e:
      raise write_error(self.path, e, f"the metrics of step {step} were not appended; the lines before are "
                                      "intact and a resumed run drops a torn last line") from e
    for key, value in metrics.items():
      if isinstance(value, (int, float)):
        self._tb.add_scalar(f"{prefix}/{key}", value, step)

  def close(self) -> None:
    if self._fd is not None:
      os.close(self._fd)
      self._tb.close()
      self._fd = self._tb = None
