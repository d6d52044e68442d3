"""Metric writers: one JSON object per line in `<workdir>/metrics.jsonl`, and TensorBoard events.

Each JSONL line is written with one `write` call and flushed, so a killed run leaves whole lines.
On resume from step k the file is first rewritten (atomically) without the lines of steps after k
— steps the killed run did but the checkpoint does not hold — so the file always describes the
run that the checkpoints continue. Only process 0 writes.
"""

import json
import time
from pathlib import Path

import jax

from sandbox_jax.data import atomic_write_text

METRICS_FILE = "metrics.jsonl"


def read_metrics(workdir: str | Path) -> list[dict]:
  path = Path(workdir) / METRICS_FILE
  if not path.is_file():
    return []
  return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class MetricWriter:
  def __init__(self, workdir: str | Path, resume_step: int = 0):
    self.path = Path(workdir) / METRICS_FILE
    self.enabled = jax.process_index() == 0
    self._file = self._tb = None
    if not self.enabled:
      return
    from tensorboardX import SummaryWriter   # slow to import: only where it writes
    if self.path.exists():
      kept = [line for line in self.path.read_text().splitlines()
              if line.strip() and json.loads(line).get("step", 0) <= resume_step]
      atomic_write_text(self.path, "".join(line + "\n" for line in kept))
    self._file = self.path.open("a", encoding="utf-8")
    self._tb = SummaryWriter(str(Path(workdir) / "tensorboard"))

  def write(self, step: int, stage: str, metrics: dict, prefix: str = "train") -> None:
    if not self.enabled:
      return
    line = {"step": step, "stage": stage, "time": round(time.time(), 3)}
    line.update({f"{prefix}/{k}" if prefix != "train" else k: v for k, v in metrics.items()})
    self._file.write(json.dumps(line) + "\n")
    self._file.flush()
    for key, value in metrics.items():
      if isinstance(value, (int, float)):
        self._tb.add_scalar(f"{prefix}/{key}", value, step)

  def close(self) -> None:
    if self._file is not None:
      self._file.close()
      self._tb.close()
      self._file = self._tb = None
