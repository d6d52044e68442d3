"""Two local processes (`jax.distributed.initialize` on CPU, 2 fake devices each) train 2 steps and
run a society round on one mesh over all 4 devices (parameters and batch split across the
processes): the results equal the single-process run on 4 devices, the checkpoint they save
together restores in each of them and in one process on 1 or 4 devices, and only process 0 writes
the run's files.

The processes are `tests/multiprocess_worker.py`; the single-process reference runs beside them.
"""

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx
from safetensors.numpy import load_file

from sandbox_jax.parallel import make_mesh
from tests.test_checkpoint_reshard import restore_state
from tests.test_train_support import MICRO

pytestmark = pytest.mark.slow   # ~35 s on 2 idle cores: three processes each compile a train step and a round

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 240


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _start(out: Path, workdir: Path, log: Path, devices: int, processes: int = 1, process_id: int = 0,
           port: int = 0) -> subprocess.Popen:
  env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_PLATFORMS")}
  env.update(PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
  command = [sys.executable, "-m", "tests.multiprocess_worker", f"--out={out}", f"--workdir={workdir}",
             f"--devices={devices}", f"--num_processes={processes}", f"--process_id={process_id}", f"--port={port}"]
  with log.open("w") as handle:   # the child keeps its own copy
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)


def _wait(procs: dict[str, tuple[subprocess.Popen, Path]]) -> None:
  """Waits for every process; on a failure or timeout kills the rest and fails with every log."""
  deadline = time.monotonic() + TIMEOUT_S
  failed = None
  while any(p.poll() is None for p, _ in procs.values()):
    failed = next((name for name, (p, _) in procs.items() if p.poll() not in (None, 0)), None)
    if failed or time.monotonic() > deadline:
      break
    time.sleep(0.2)
  for p, _ in procs.values():
    if p.poll() is None:
      p.kill()
      p.wait()
  if failed or any(p.returncode != 0 for p, _ in procs.values()):
    logs = "\n".join(f"===== {name} (exit {p.returncode}) =====\n{log.read_text()[-6000:]}"
                     for name, (p, log) in procs.items())
    reason = f"{failed} failed" if failed else f"timed out after {TIMEOUT_S}s or failed"
    pytest.fail(f"multi-process run: {reason}\n{logs}", pytrace=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """(two-process run, single-process run): each a dict of out dir, workdir and logs."""
  root = tmp_path_factory.mktemp("multiprocess")
  port = _free_port()
  two = {"out": root / "two_out", "workdir": root / "two_work", "logs": [root / "p0.log", root / "p1.log"]}
  one = {"out": root / "one_out", "workdir": root / "one_work", "logs": [root / "single.log"]}
  procs = {f"process {i} of 2": (_start(two["out"], two["workdir"], two["logs"][i], 2, 2, i, port), two["logs"][i])
           for i in range(2)}
  procs["single process"] = (_start(one["out"], one["workdir"], one["logs"][0], 4), one["logs"][0])
  _wait(procs)
  return two, one


def _result(run):
  return json.loads((run["out"] / "result.json").read_text()), dict(np.load(run["out"] / "params.npz"))


def test_train_steps_equal_the_single_process_run(runs):
  (two, two_params), (one, one_params) = map(_result, runs)
  assert two["steps"] == one["steps"] == 2
  assert two_params.keys() == one_params.keys()
  for name in one_params:   # float sums in another order across processes: equal to rounding
    np.testing.assert_allclose(two_params[name], one_params[name], rtol=1e-5, atol=1e-6, err_msg=name)
  for key in ("loss", "grad_norm", "num_groups", "tokens", "sft", "margin"):
    assert two["final_metrics"][key] == pytest.approx(one["final_metrics"][key], rel=1e-5), key


def test_a_checkpoint_of_two_processes_restores_in_each_and_in_one(runs):
  """Resuming in the two processes restores the checkpoint they saved together; this one process
  restores it too, on 1 device and on a 4-device mesh, with the parameters the run ended with."""
  (two, params), _ = map(_result, runs)
  assert two["restored_equal"]
  model_cfg = dataclasses.replace(MICRO, num_layers=1, max_positions=256)   # the worker's MODEL
  for mesh in (None, make_mesh({"fsdp": 2, "tensor": 2}, devices=jax.devices()[:4])):
    state, meta = restore_state(runs[0]["workdir"] / "train" / "checkpoints", 2, mesh, model_cfg)
    assert meta["step"] == 2
    restored = {".".join(map(str, path)): np.asarray(jax.device_get(var.get_value()))
                for path, var in nnx.to_flat_state(state.params)}
    assert restored.keys() == params.keys()
    for name, value in params.items():
      np.testing.assert_array_equal(restored[name], value, err_msg=name)


def test_society_round_equals_the_single_process_run(runs):
  (two, _), (one, _) = map(_result, runs)
  rows_two = [json.loads(line) for line in two["transcript"].splitlines()]
  rows_one = [json.loads(line) for line in one["transcript"].splitlines()]
  assert len(rows_two) == len(rows_one) == 4   # one 2x2 world, one round
  for a, b in zip(rows_two, rows_one):
    assert a.keys() == b.keys()
    for key in a:
      if isinstance(a[key], float):
        assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-5), key
      elif key in ("rating", "rating_distribution"):
        np.testing.assert_allclose(a[key], b[key], rtol=1e-4, atol=1e-5, err_msg=key)
      else:
        assert a[key] == b[key], key


def test_files_are_written_once_by_process_zero(runs):
  two, _ = runs
  work = two["workdir"]
  lines = (work / "train" / "metrics.jsonl").read_text().splitlines()
  assert [json.loads(line)["step"] for line in lines] == [1, 2]       # not once per process
  assert sorted(p.name for p in (work / "train" / "checkpoints").iterdir() if p.name.isdigit()) == ["1", "2"]
  exported = load_file(work / "train" / "export" / "model.safetensors")   # gathered from both, written by 0
  np.testing.assert_array_equal(exported["model.embed_tokens.weight"], _result(two)[1]["embed"])
  np.testing.assert_array_equal(exported["model.norm.weight"], _result(two)[1]["final_norm"])
  assert len((work / "society" / "transcript.jsonl").read_text().splitlines()) == 4
  assert len((work / "society" / "metrics.jsonl").read_text().splitlines()) == 1
  assert (work / "society" / "state" / "1").is_dir()
  p1 = two["logs"][1].read_text()
  assert "train:" not in p1 and "society rounds" not in p1            # progress bars: process 0 only
  assert "train:" in two["logs"][0].read_text()
