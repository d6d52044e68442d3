"""The main job SIGKILLed in every stage and rerun: the final outputs equal an uninterrupted run's.

`sandbox-jax pipeline` runs on the micro config as a subprocess. One workdir is killed seven times,
once in each stage, each time by a real SIGKILL (no exception, no cleanup), and the same command is
run again after each kill; the society stage is killed from outside at a random moment, the others
at named points (`sandbox_jax.kill_points`, `SANDBOX_JAX_TEST_KILL_AT`). After the last rerun
every output (transcript, records, both trainings' metrics and exported weights, evaluation
results, report files, stage summaries) equals the uninterrupted reference run's, bitwise, except
wall times and the workdir's own path (the same machine, the same config, one process each); a
finished stage is not rerun (the transcript is not rewritten after the society stage's DONE.json).
The processes share a persistent compilation cache: the reference compiles, the reruns load.
docs/robustness.md lists the kill points and what each leaves behind.
"""

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sandbox_jax.kill_points import KILL_AT_ENV

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from configs.tiny import get_config  # noqa: E402

STAGES = ("warmup", "society", "records", "train", "evaluate_start", "evaluate_trained")
TIMING_KEYS = {"seconds", "time"}


def _env(root: Path, kill_at: str | None) -> dict:
  env = {**os.environ, "PYTHONPATH": str(REPO), "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
         "HF_HUB_OFFLINE": "1", "JAX_PLATFORMS": "cpu", "JAX_COMPILATION_CACHE_DIR": str(root / "jax_cache"),
         "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
  env.pop(KILL_AT_ENV, None)
  if kill_at:
    env[KILL_AT_ENV] = kill_at
  return env


def _start(workdir: Path, root: Path, kill_at: str | None = None) -> subprocess.Popen:
  command = [sys.executable, "-m", "sandbox_jax.main", "pipeline", f"--config={REPO / 'configs' / 'tiny.py'}:runlocal",
             f"--config.workdir={workdir}"]
  log = open(root / f"{workdir.name}.log", "ab")
  return subprocess.Popen(command, env=_env(root, kill_at), cwd=root, stdout=log, stderr=subprocess.STDOUT)


def _finish(process: subprocess.Popen, root: Path, workdir: Path, expect_kill: bool):
  process.wait(timeout=600)
  log = (root / f"{workdir.name}.log").read_text(errors="replace")[-4000:]
  if expect_kill:
    assert process.returncode == -signal.SIGKILL, f"not killed (rc {process.returncode}):\n{log}"
  else:
    assert process.returncode == 0, log


def _done(workdir: Path) -> set[str]:
  return {stage for stage in STAGES if (workdir / stage / "DONE.json").is_file()}


def _steps(directory: Path) -> list[int]:
  return sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit()) if directory.is_dir() else []


def _json(path: Path, workdir: Path):
  """The file's JSON with the workdir's path replaced and wall times dropped."""
  def strip(value):
    if isinstance(value, dict):
      return {k: strip(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
      return [strip(v) for v in value]
    return value

  text = path.read_text().replace(str(workdir), "<workdir>")
  if path.suffix == ".jsonl":
    return [strip(json.loads(line)) for line in text.splitlines() if line.strip()]
  return strip(json.loads(text))


def _outputs(workdir: Path) -> dict:
  """Everything the run computed: what a rerun must reproduce."""
  out = {f"{stage}/DONE.json": _json(workdir / stage / "DONE.json", workdir) for stage in STAGES}
  for name in ("warmup/metrics.jsonl", "train/metrics.jsonl", "evaluate_start/result.json",
               "evaluate_trained/result.json", "report/comparison.json", "society/metrics.jsonl"):
    out[name] = _json(workdir / name, workdir)
  for name in ("society/transcript.jsonl", "records/records.jsonl", "records/sandbox_v1.json", "report/comparison.md",
               "report/comparison.csv", "report/report.html", "report/society.html", "warmup/export/config.json",
               "train/export/config.json", "warmup/export/model.safetensors", "train/export/model.safetensors",
               *(f"report/{p.name}" for p in sorted((workdir / "report").glob("*.png")))):
    out[name] = hashlib.sha256((workdir / name).read_bytes()).hexdigest()
  return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """One uninterrupted run (it fills the shared compilation cache) and its outputs."""
  root = tmp_path_factory.mktemp("kill_resume")
  workdir = root / "reference"
  _finish(_start(workdir, root), root, workdir, expect_kill=False)
  return root, _outputs(workdir)


def _kill_when(process: subprocess.Popen, appears: Path, delay_s: float):
  """SIGKILLs `process` `delay_s` seconds after `appears` exists (from outside, like a user or the OOM killer)."""
  deadline = time.monotonic() + 600
  while process.poll() is None and not appears.exists() and time.monotonic() < deadline:
    time.sleep(0.02)
  time.sleep(delay_s)
  if process.poll() is None:
    os.kill(process.pid, signal.SIGKILL)


@pytest.mark.slow
def test_killed_in_every_stage_and_rerun_gives_the_uninterrupted_outputs(reference):
  root, uninterrupted = reference
  workdir = root / "killed"

  def run(kill_at: str | None = None) -> subprocess.Popen:
    process = _start(workdir, root, kill_at)
    if kill_at is None:
      _finish(process, root, workdir, expect_kill=False)
    return process

  # warm-up: its last checkpoint (step 4 of 4) saved, the model not yet exported
  _finish(run("train.checkpoint#4"), root, workdir, expect_kill=True)
  assert _done(workdir) == set() and _steps(workdir / "warmup" / "checkpoints")[-1] == 4
  assert not (workdir / "warmup" / "export").exists()

  # society: killed from outside at a random moment of the stage (its runner has started)
  process = _start(workdir, root)
  _kill_when(process, workdir / "society" / "run.json", random.Random(17).uniform(0.0, 2.0))
  _finish(process, root, workdir, expect_kill=True)
  assert _done(workdir) == {"warmup"}

  # records: records.jsonl and sandbox_v1.json written, DONE.json not
  _finish(run("stage.records.before_done"), root, workdir, expect_kill=True)
  assert _done(workdir) == {"warmup", "society"} and (workdir / "records" / "records.jsonl").is_file()
  transcript = workdir / "society" / "transcript.jsonl"
  transcript_written = (transcript.stat().st_mtime_ns, transcript.read_bytes())

  # train: step 5 of 6 done and in metrics.jsonl, its checkpoint not written (the last one is step 4)
  _finish(run("train.step#5"), root, workdir, expect_kill=True)
  assert _done(workdir) == {"warmup", "society", "records"}
  assert _steps(workdir / "train" / "checkpoints")[-1] == 4
  assert len((workdir / "train" / "metrics.jsonl").read_text().splitlines()) == 5

  # evaluate, each checkpoint: result.json written, DONE.json not
  for stage in ("evaluate_start", "evaluate_trained"):
    _finish(run(f"stage.{stage}.before_done"), root, workdir, expect_kill=True)
    assert (workdir / stage / "result.json").is_file() and stage not in _done(workdir)

  # report: tables, plots and report.html written, the society viewer not
  _finish(run("report.compared"), root, workdir, expect_kill=True)
  assert _done(workdir) == set(STAGES) and (workdir / "report" / "report.html").is_file()
  assert not (workdir / "report" / "society.html").exists()

  run()
  resumed = _outputs(workdir)
  assert resumed.keys() == uninterrupted.keys()
  assert [k for k in resumed if resumed[k] != uninterrupted[k]] == []
  assert len(resumed["train/metrics.jsonl"]) == 6 and resumed["train/DONE.json"]["final"]["loss"] > 0
  assert (transcript.stat().st_mtime_ns, transcript.read_bytes()) == transcript_written   # the society not rerun
  # the training ran every configured step of the record types present (all of them here)
  present = resumed["records/DONE.json"]["by_type"]
  stage_steps = get_config("runlocal").train.stage_steps
  assert resumed["train/DONE.json"]["steps"] == sum(n for stage, n in stage_steps.items() if stage in present) == 6
  assert {"aligned_mean_rating", "misaligned_mean_rating"} <= set(resumed["warmup/DONE.json"]["rating_separation_after"])
  assert (workdir / "report" / "report.html").stat().st_size > 1000
  table = (workdir / "report" / "comparison.md").read_text()
  assert "| start |" in table and "| trained |" in table
