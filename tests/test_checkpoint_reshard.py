"""A train-state checkpoint saved on 8 fake devices restores on 1 and on 4 (and on 4 others, in
another layout) with equal parameters and optimizer state, each array in the new mesh's shardings;
a run killed on 8 devices resumes on 1 and ends where the uninterrupted run ends."""

import jax
import numpy as np
import pytest
from flax import nnx

from sandbox_jax.parallel import make_mesh
from sandbox_jax.training import TrainCheckpoints, make_optimizer, read_metrics, train
from sandbox_jax.training.checkpoint import flatten_state
from sandbox_jax.training.state import abstract_train_state, init_train_state, split_model, state_shardings
from tests.test_train_support import MICRO, TOKENIZER, micro_model, toy_groups, train_config

SAVE_MESH = {"data": 2, "fsdp": 2, "tensor": 2}


def restore_state(directory, step: int, mesh, model_cfg=MICRO, cfg=None):
  """The checkpoint's TrainState restored onto `mesh` (None: one device), and its meta."""
  model = micro_model(mesh, cfg=model_cfg)
  _, params, _ = split_model(model)
  optimizer = make_optimizer(cfg or train_config())
  abstract = abstract_train_state(params, optimizer, state_shardings(params, optimizer, mesh))
  return TrainCheckpoints(directory).restore(step, abstract, model.cfg)


def _host(state) -> dict[str, np.ndarray]:
  flat, _ = flatten_state(state)
  return {k: np.asarray(jax.device_get(v)) for k, v in flat.items()}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
  """A state on 8 devices with every array distinct (moments made random), saved at step 3."""
  mesh = make_mesh(SAVE_MESH)
  assert mesh.size == 8
  _, params, _ = split_model(micro_model(mesh))
  optimizer = make_optimizer(train_config())
  state = init_train_state(params, optimizer, state_shardings(params, optimizer, mesh))
  rng = np.random.default_rng(0)
  state = jax.tree.map(lambda x: jax.device_put(rng.normal(size=x.shape).astype(x.dtype), x.sharding)
                       if jax.numpy.issubdtype(x.dtype, jax.numpy.floating) else x, state)
  directory = tmp_path_factory.mktemp("reshard") / "checkpoints"
  checkpoints = TrainCheckpoints(directory)
  checkpoints.save(3, state, {"step": 3}, MICRO)
  checkpoints.close()
  sharded = [v for v in jax.tree.leaves(state.params) if not v.sharding.is_fully_replicated]
  assert sharded, "the saved parameters should be split over the 8 devices"
  return directory, _host(state)


@pytest.mark.parametrize("where", ["1 device", "1-device mesh", "4 devices", "4 other devices"])
def test_restores_on_fewer_devices_with_equal_state(saved, where):
  directory, want = saved
  devices = jax.devices()
  mesh = {"1 device": None,
          "1-device mesh": make_mesh({"data": 1}, devices=devices[:1]),
          "4 devices": make_mesh({"fsdp": 4}, devices=devices[:4]),
          "4 other devices": make_mesh({"data": 2, "tensor": 2}, devices=devices[4:])}[where]
  state, meta = restore_state(directory, 3, mesh)
  assert meta["step"] == 3
  got = _host(state)
  assert got.keys() == want.keys()
  for key in want:
    np.testing.assert_array_equal(got[key], want[key], err_msg=key)
  expected = state_shardings(split_model(micro_model(mesh))[1], make_optimizer(train_config()), mesh)
  for array, sharding in zip(jax.tree.leaves(state), jax.tree.leaves(expected)):
    assert array.sharding.is_equivalent_to(sharding, array.ndim)
    used = {d for d in array.sharding.device_set}
    assert used <= set(devices[:1] if mesh is None else mesh.devices.flat)


def _params(model):
  return {".".join(map(str, p)): np.asarray(jax.device_get(v.get_value()))
          for p, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}


class Killed(Exception):
  pass


def test_a_run_killed_on_8_devices_resumes_on_1(tmp_path):
  mesh8 = make_mesh({"data": 2, "fsdp": 4})
  groups = toy_groups(24, typed=False)
  cfg = train_config(groups_per_batch=8, checkpoint_every=2, eval_every=2, schedule="mixed",
                     stage_steps=dict(mixed=3))

  def die(model, step):
    raise Killed(f"killed after step {step}")

  with pytest.raises(Killed):
    train(cfg, micro_model(mesh8), TOKENIZER, groups, tmp_path / "run", mesh8, eval_fn=die, progress=False)
  assert TrainCheckpoints(tmp_path / "run" / "checkpoints").latest_step() == 2
  resumed = train(cfg, micro_model(), TOKENIZER, groups, tmp_path / "run", progress=False)
  full = train(cfg, micro_model(), TOKENIZER, groups, tmp_path / "full", progress=False)
  assert resumed.steps == full.steps == 3
  want, got = _params(full.model), _params(resumed.model)
  for key in want:   # 8 devices sum in another order than 1: equal to rounding
    np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6, err_msg=key)
  assert [m["step"] for m in read_metrics(tmp_path / "run")] == [1, 2, 3]
  assert [m["loss"] for m in read_metrics(tmp_path / "run")][2] == pytest.approx(
      read_metrics(tmp_path / "full")[2]["loss"], rel=1e-5)
