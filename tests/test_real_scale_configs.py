"""Real-scale configs: each builds its abstract model without any file (the published parameter
count), and its mesh, batch and sharded training state fit the hardware it names. Nothing is allocated."""

import importlib
import math

import jax
import numpy as np
import pytest
from flax import nnx
from jax.sharding import AbstractMesh

from sandbox_jax.model.factory import abstract_model
from sandbox_jax.parallel.mesh import MESH_AXES, resolve_mesh_shape
from sandbox_jax.parallel.rules import logical_to_spec, rules_from_config
from sandbox_jax.parallel.sharding import logical_shardings
from sandbox_jax.pipeline.memory_plan import plan_model_config
from sandbox_jax.pipeline.simulate import society_config
from sandbox_jax.training.config import TrainConfig

PARAMETERS = {"gpt2_124m": 124_439_808, "qwen2_5_0_5b": 494_032_768, "llama3_2_1b": 1_235_814_400,
              "llama_7b": 6_738_415_616}
FAMILY = {"gpt2_124m": "gpt2", "qwen2_5_0_5b": "llama", "llama3_2_1b": "llama", "llama_7b": "llama"}


def _config(name: str, arg: str = ""):
  return importlib.import_module(f"configs.{name}").get_config(f"path=/nonexistent/{name}" + arg)


@pytest.mark.parametrize("name", PARAMETERS)
def test_abstract_model_has_the_published_parameter_count(name):
  config = _config(name)
  cfg, source = plan_model_config(config)   # the checkpoint directory does not exist
  assert source == "config.architecture"
  assert cfg.family == FAMILY[name] and cfg.dtype == "bfloat16" and cfg.param_dtype == "float32"
  params = nnx.state(abstract_model(cfg), nnx.Param)
  assert sum(math.prod(x.shape) for x in jax.tree.leaves(params)) == PARAMETERS[name]
  assert config.checkpoint == config.tokenizer == f"/nonexistent/{name}"


@pytest.mark.parametrize("name", PARAMETERS)
def test_mesh_batch_and_sharded_state_fit_the_stated_hardware(name):
  config = _config(name)
  hardware = config.hardware
  mesh = AbstractMesh(resolve_mesh_shape(dict(config.mesh), hardware.devices), MESH_AXES)
  rules = rules_from_config(config.logical_axis_rules)
  cfg, _ = plan_model_config(config)
  state = nnx.state(abstract_model(cfg), nnx.Param)
  shardings = logical_shardings(state, mesh, rules)
  per_device = sum(math.prod(s.shard_shape(x.shape)) * np.dtype(x.dtype).itemsize
                   for x, s in zip(jax.tree.leaves(state), jax.tree.leaves(shardings)))
  total = sum(x.size * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(state))
  fsdp = mesh.shape["fsdp"] * mesh.shape["tensor"]
  assert per_device <= 1.1 * total / fsdp   # the state really is sharded as the mesh says
  # parameters, gradients and two Adam moments (all fp32) leave at least half the device for the rest
  assert 4 * per_device <= 0.5 * hardware.device_memory_gb * 2**30
  # the batch's groups and the society's agents split evenly over the batch axes (no replicated rows)
  train = TrainConfig.from_dict(config.train.to_dict())
  society = society_config(config.society.to_dict())
  spec = logical_to_spec(("batch",), rules, mesh)[0]
  shards = math.prod(mesh.shape[a] for a in ((spec,) if isinstance(spec, str) else spec or ()))
  assert (train.groups_per_batch // train.accum_steps) % shards == 0
  assert society.num_agents % shards == 0
  assert society.feedback_prompt_tokens + 1 + 16 + society.reason_tokens <= cfg.max_positions


@pytest.mark.parametrize("name", PARAMETERS)
def test_runlocal_variant_and_missing_path(name):
  local = _config(name, ",runlocal")
  assert local.society.grid_size < _config(name).society.grid_size
  assert TrainConfig.from_dict(local.train.to_dict()).total_steps == 6
  with pytest.raises(ValueError, match="needs path="):
    importlib.import_module(f"configs.{name}").get_config("")
