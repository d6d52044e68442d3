"""Killing a run and resuming it from its checkpoint gives bitwise the run that never stopped.

The run is sharded (data=2, fsdp=4 on 8 fake CPU devices), accumulates 2 micro-batches per step,
and crosses all three stages; the kill lands between checkpoints, in the last stage, so the
resumed run must restore parameters, optimizer state, RNG, step, stage and data positions.
"""

import jax
import numpy as np
import pytest

from sandbox_jax.parallel import make_mesh
from sandbox_jax.training import TrainCheckpoints, read_metrics, train
from tests.test_train_support import TOKENIZER, micro_model, toy_groups, train_config


class Killed(Exception):
  pass


def _kill_at(step_to_die: int):
  def eval_fn(model, step):
    if step == step_to_die:
      raise Killed(f"killed after step {step}")
    return None
  return eval_fn


def _params(model):
  from flax import nnx
  return {jax.tree_util.keystr(p): np.asarray(jax.device_get(v))
          for p, v in jax.tree_util.tree_flatten_with_path(nnx.state(model, nnx.Param))[0]}


def test_resume_after_kill_is_bitwise(tmp_path):
  mesh = make_mesh({"data": 2, "fsdp": 4})
  model = micro_model(mesh)
  groups = toy_groups(48)
  cfg = train_config(groups_per_batch=16, accum_steps=2, checkpoint_every=3, eval_every=1,
                     stage_steps=dict(imitation=3, self_critic=2, realignment=3))
  full = train(cfg, model, TOKENIZER, groups, tmp_path / "full", mesh, eval_fn=_kill_at(-1), progress=False)
  assert full.steps == 8 and full.stages == [("imitation", 3), ("self_critic", 2), ("realignment", 3)]

  run = tmp_path / "killed"
  with pytest.raises(Killed):
    train(cfg, model, TOKENIZER, groups, run, mesh, eval_fn=_kill_at(7), progress=False)
  assert TrainCheckpoints(run / "checkpoints").latest_step() == 6   # saved at 3, 5 (stage end), 6
  assert [m["step"] for m in read_metrics(run)] == list(range(1, 8))
  with open(run / "metrics.jsonl", "a") as f:   # a line torn by a full disk (MetricWriter)
    f.write('{"step": 8, "stage": "reali')
  resumed = train(cfg, model, TOKENIZER, groups, run, mesh, progress=False)
  assert resumed.steps == 8
  # killed after its final checkpoint, before the export: the rerun runs no step and still returns
  # the last step's metrics (they travel in the checkpoint)
  again = train(cfg, model, TOKENIZER, groups, run, mesh, progress=False)
  assert again.steps == 8 and again.final_metrics == resumed.final_metrics and again.final_metrics["loss"] > 0

  want, got = _params(full.model), _params(resumed.model)
  assert want.keys() == got.keys()
  for key in want:
    np.testing.assert_array_equal(got[key], want[key], err_msg=key)
  assert any(not np.array_equal(got[k], _params(model)[k]) for k in got)   # it did train
  full_log, resumed_log = read_metrics(tmp_path / "full"), read_metrics(run)
  assert [m["step"] for m in resumed_log] == list(range(1, 9))          # steps 7.. rewritten once
  assert [m["loss"] for m in resumed_log] == [m["loss"] for m in full_log]
  assert [m["stage"] for m in resumed_log] == ["imitation"] * 3 + ["self_critic"] * 2 + ["realignment"] * 3
  sharding = jax.tree.leaves(resumed.model)[0].sharding
  assert sharding.mesh.shape == mesh.shape

