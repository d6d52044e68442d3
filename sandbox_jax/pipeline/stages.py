"""Stage bookkeeping: each stage writes its outputs under `<workdir>/<stage>/` and a `DONE.json`
last (atomically), so a rerun skips finished stages and redoes an interrupted one.

Multi-process: process 0 decides whether a stage is done and tells the others (they must all take
the same branch), writes `DONE.json` alone, and the others wait until it is on disk."""

import json
import time
from pathlib import Path

import jax
import numpy as np

from sandbox_jax.data.jsonl import atomic_write_text
from sandbox_jax.kill_points import kill_point
from sandbox_jax.parallel.distributed import is_primary, sync


def is_done(workdir, name: str) -> bool:
  done = (Path(workdir) / name / "DONE.json").is_file()
  if jax.process_count() > 1:   # process 0's answer, on every process
    from jax.experimental import multihost_utils

    done = bool(multihost_utils.broadcast_one_to_all(np.int32(done)))
  return done


def mark_done(workdir, name: str, summary: dict, seconds: float):
  kill_point(f"stage.{name}.before_done")   # the stage's outputs are written, its DONE.json is not
  if is_primary():
    atomic_write_text(Path(workdir) / name / "DONE.json",
                      json.dumps({"stage": name, "seconds": round(seconds, 2), **summary}, indent=2))
  sync(f"stage {name} done")


def read_done(workdir, name: str) -> dict:
  return json.loads((Path(workdir) / name / "DONE.json").read_text())


class Timer:
  def __enter__(self):
    self.start = time.perf_counter()
    return self

  def __exit__(self, *exc):
    self.seconds = time.perf_counter() - self.start
