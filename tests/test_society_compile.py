"""`sandbox-jax simulate` compiles the society round once over several rounds on a one-device mesh (the
CLI path users run; there, placing the first state used to be a no-op, so round 1 retraced on the
mesh-sharded outputs of round 0). Meshes of several devices take the same path (tests/test_multiprocess).
The records stage then builds its files from that transcript (one society compile serves both)."""

import json

import jax

import sandbox_jax.parallel
import sandbox_jax.society.runner as runner_module
from configs import tiny
from sandbox_jax import main
from sandbox_jax.pipeline.records import build_records
from sandbox_jax.society.round import SocietyRound


def test_simulate_compiles_the_round_once_on_a_one_device_mesh(tmp_path, monkeypatch):
  rounds = []

  class Counted(SocietyRound):
    def __init__(self, *args, **kwargs):
      super().__init__(*args, **kwargs)
      rounds.append(self)

  real_make_mesh = sandbox_jax.parallel.make_mesh
  monkeypatch.setattr(sandbox_jax.parallel, "make_mesh",
                      lambda sizes: real_make_mesh(sizes, devices=jax.devices()[:1]))
  monkeypatch.setattr(runner_module, "SocietyRound", Counted)
  config = tiny.get_config("runlocal")
  config.workdir = str(tmp_path)
  config.society.rounds = 3
  main.cmd_simulate(config)
  assert len(rounds) == 1 and rounds[0].compile_count == 1
  rows = [json.loads(line) for line in (tmp_path / "society" / "transcript.jsonl").read_text().splitlines()]
  assert sorted({r["round"] for r in rows}) == [0, 1, 2] and len(rows) == config.society.rounds * 4

  summary = build_records(tmp_path / "society" / "transcript.jsonl", tmp_path / "records")
  assert summary["rows"] == len(rows) and summary["records"] > 0
  assert (tmp_path / "records" / "records.jsonl").is_file()
  groups = json.loads((tmp_path / "records" / "sandbox_v1.json").read_text())
  assert len(groups) == summary["groups"] and {"query", "responses", "scores"} <= set(groups[0])
