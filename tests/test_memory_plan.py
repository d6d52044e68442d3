"""The memory plan: its figures are XLA's, FSDP divides the state, the batch search brackets the limit."""

import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec

from configs.tiny import get_config
from sandbox_jax.data import GroupBatch
from sandbox_jax.model import create_model
from sandbox_jax.model.config import model_config_from_dict
from sandbox_jax.parallel import make_mesh
from sandbox_jax.pipeline import memory_plan as mp
from sandbox_jax.training.config import TrainConfig
from sandbox_jax.training.state import init_train_state, split_model
from sandbox_jax.training.trainer import _optimizer_and_step

def _config(groups: int = 8):
  config = get_config("runlocal")   # the micro model: embed 32, 1 layer, vocab 384
  config.train.update(groups_per_batch=groups, accum_steps=1)
  return config


def _mesh(fsdp: int):
  return make_mesh({"data": -1, "fsdp": fsdp, "tensor": 1})


def _train_plan(fsdp: int, groups: int = 8) -> mp.MemoryPlan:
  return mp.plan_train_step(_config(), _mesh(fsdp), groups)   # memoized: tests share the compiles


def test_train_plan_matches_the_compiled_steps_own_memory_analysis():
  config, mesh = _config(), _mesh(2)
  plan = _train_plan(2)
  # Reference: the trainer's own step, on a real (tiny) model, state and batch, compiled plainly.
  cfg = TrainConfig.from_dict(config.train.to_dict())
  model = create_model(model_config_from_dict(config.model), seed=0, mesh=mesh)
  graphdef, params, rest = split_model(model)
  optimizer, shardings, step = _optimizer_and_step(cfg, graphdef, rest, params, mesh)
  state = init_train_state(params, optimizer, shardings)
  g, r, t = cfg.groups_per_batch, cfg.max_responses, cfg.max_len
  put = lambda x: jax.device_put(x, NamedSharding(mesh, PartitionSpec(None, ("data", "fsdp"))))
  batch = GroupBatch(*(put(np.zeros(shape, dtype)) for shape, dtype in (
      ((1, g, r, t), np.int32), ((1, g, r, t), np.int32), ((1, g, r, t), np.float32), ((1, g, r, t), bool),
      ((1, g, r), np.float32), ((1, g, r), bool), ((1, g), bool))))
  stats = step.lower(state, batch, None, np.float32(1e-3)).compile().memory_analysis()
  reference = (stats.argument_size_in_bytes + stats.output_size_in_bytes - stats.alias_size_in_bytes
               + stats.temp_size_in_bytes)
  assert abs(plan.total - reference) <= 0.10 * reference, (plan, reference)
  assert abs(plan.temp - stats.temp_size_in_bytes) <= 0.10 * stats.temp_size_in_bytes
  # the parameters and optimizer state the plan names are what the real state holds per device
  held = lambda tree: sum(x.addressable_shards[0].data.nbytes for x in jax.tree.leaves(tree))
  assert plan.params == held(state.params)
  assert plan.optimizer == held((state.opt_state, state.step))


@pytest.mark.parametrize("fsdp", [2, 4, 8])
def test_fsdp_divides_parameters_and_optimizer_state(fsdp):
  whole = _train_plan(1)
  plan = _train_plan(fsdp)
  state_1, state_n = whole.params + whole.optimizer, plan.params + plan.optimizer
  replicated = 64   # Adam's step count, the train step and the RNG key: a few scalars on every device
  assert state_1 / fsdp <= state_n <= 1.15 * state_1 / fsdp + replicated, (fsdp, state_1, state_n)
  assert plan.params * fsdp == pytest.approx(whole.params, rel=0.02)
  # XLA's own argument size agrees with the split by shardings
  assert plan.analysis["argument"] == plan.params + plan.optimizer + plan.inputs


def test_largest_batch_fits_and_the_next_size_does_not():
  config, mesh = _config(), _mesh(8)
  unit = mp.train_batch_unit(config, mesh)
  assert unit == 8
  one, two = _train_plan(8, unit), _train_plan(8, 2 * unit)
  assert two.total > one.total
  limit = one.total + int(2.5 * (two.total - one.total))
  groups, plan = mp.largest_train_batch(config, mesh, limit)
  assert groups >= 2 * unit and groups % unit == 0
  assert plan.batch == groups and plan.total <= limit
  assert mp.plan_train_step(config, mesh, groups).total <= limit
  assert mp.plan_train_step(config, mesh, groups + unit).total > limit


def test_largest_fitting_search_on_a_known_function():
  calls = []

  def fake(u):
    calls.append(u)
    return mp.MemoryPlan("fake", u, 0, 0, 0, 0, 0, 100 + 7 * u + (u > 40) * 50)

  units, plans = mp.largest_fitting(fake, 100 + 7 * 45)
  assert units == 40 and plans[40].total <= 415 < plans[41].total   # the jump at 41 is found by bisection
  assert len(calls) == len(set(calls)) and len(calls) < 15
  assert mp.largest_fitting(fake, 106) == (0, {1: fake(1)})   # not even one unit fits


def test_society_round_plan_counts_the_shared_model_once():
  config = _config()
  plan = mp.plan_society_round(config, _mesh(1))
  a = plan.analysis
  assert plan.batch == config.society.grid_size ** 2 * len(config.society.worlds)
  assert plan.total == a["argument"] - plan.params + a["output"] - a["alias"] + a["temp"]
  assert a["argument"] == 2 * plan.params + plan.inputs   # agent and observer arguments, one set of buffers
  assert 0 < plan.kv_cache < plan.temp
  table = mp.format_plans([_train_plan(1), plan]).splitlines()
  assert table[0].split()[:3] == ["program", "batch", "params"]
  assert table[2].startswith("train step") and table[3].startswith("society round")


def test_bad_config_keys_give_clear_errors():
  mesh = _mesh(1)
  config = _config()
  config.train.bogus = 1
  with pytest.raises(ValueError, match=r"config key train: unknown keys \['bogus'\]"):
    mp.plan_train_step(config, mesh)
  config = _config()
  config.society.bogus = 1
  with pytest.raises(ValueError, match=r"config key society: unknown fields \['bogus'\]"):
    mp.plan_society_round(config, mesh)
  config = _config()
  config.model.bogus = 1
  with pytest.raises(ValueError, match=r"config key model: unknown fields \['bogus'\]"):
    mp.plan_train_step(config, mesh)
  config = _config()
  del config["train"]
  with pytest.raises(ValueError, match="config key train: missing"):
    mp.plan_train_step(config, mesh)
  config = _config()
  config.checkpoint = "/nonexistent/model"
  with pytest.raises(FileNotFoundError, match="config key checkpoint: .*config.json does not exist"):
    mp.plan_model_config(config)
  with pytest.raises(ValueError, match="device memory must be > 0"):
    mp.device_memory_limit(_config(), -1.0)


def test_plan_is_a_command():
  from sandbox_jax import main

  assert main.COMMANDS["plan"] is main.cmd_plan
