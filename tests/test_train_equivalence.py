"""The loss and its gradients do not depend on the mesh or on how the batch is split.

Single device vs. meshes data=8 / data=2,fsdp=4 / data=2,fsdp=2,tensor=2 on 8 fake CPU devices, and
1 vs. 4 micro-batches, all in fp32 at 1e-5 relative tolerance. The same parameters and batch go
in everywhere; the batch's group axis is sharded over ('data', 'fsdp').
"""

import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec

from sandbox_jax.parallel import make_mesh
from sandbox_jax.training import make_loss_and_grads
from sandbox_jax.training.state import split_model
from sandbox_jax.training.step import split_microbatches
from tests.test_train_support import micro_model, toy_batch, train_config

RTOL = 1e-5
MESHES = {"data=8": {"data": 8}, "data=2,fsdp=4": {"data": 2, "fsdp": 4},
          "data=2,fsdp=2,tensor=2": {"data": 2, "fsdp": 2, "tensor": 2}}


def _batch_and_ref():
  batch = toy_batch(groups_per_batch=8, responses=5)
  batch = batch._replace(group_mask_G=batch.group_mask_G & (np.arange(8) != 5))  # one padding group
  ref = np.random.default_rng(0).normal(-40.0, 5.0, batch.scores_GxR.shape).astype(np.float32)
  return batch, ref


def _run(loss: str, mesh_axes: dict | None, accum: int, logits_chunk: int = 0):
  mesh = None if mesh_axes is None else make_mesh(mesh_axes)
  model = micro_model(mesh)
  cfg = train_config(loss=loss, groups_per_batch=8, accum_steps=accum, logits_chunk=logits_chunk)
  graphdef, params, rest = split_model(model)
  batch, ref = _batch_and_ref()
  batch_A, ref_A = split_microbatches((batch, ref if loss == "dpo" else None), accum)
  if mesh is not None:
    sharding = NamedSharding(mesh, PartitionSpec(None, ("data", "fsdp")))
    batch_A, ref_A = jax.device_put((batch_A, ref_A), sharding)
  param_shardings = None if mesh is None else jax.tree.map(lambda x: x.sharding, params)
  fn = jax.jit(make_loss_and_grads(cfg, graphdef, rest, param_shardings))
  loss_value, metrics, grads = jax.device_get(fn(params, batch_A, ref_A))
  return float(loss_value), metrics, {k: np.asarray(v) for k, v in _flat(grads).items()}


def _flat(tree):
  return {jax.tree_util.keystr(p): v for p, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _assert_close(got, want, what):
  loss, metrics, grads = got
  loss0, metrics0, grads0 = want
  assert loss == pytest.approx(loss0, rel=RTOL), what
  for k in metrics0:
    np.testing.assert_allclose(metrics[k], metrics0[k], rtol=RTOL, atol=1e-6, err_msg=f"{what}: metric {k}")
  for k, g0 in grads0.items():
    scale = np.abs(g0).max()
    assert scale > 0, k
    np.testing.assert_allclose(grads[k], g0, rtol=RTOL, atol=RTOL * scale, err_msg=f"{what}: grad {k}")


@pytest.fixture(scope="module")
def single_device():
  return {loss: _run(loss, None, 1) for loss in ("stable_alignment", "dpo")}


@pytest.mark.parametrize("mesh_name", list(MESHES))
def test_loss_and_grads_equal_across_meshes(single_device, mesh_name):
  got = _run("stable_alignment", MESHES[mesh_name], 1)
  _assert_close(got, single_device["stable_alignment"], mesh_name)
  assert got[1]["num_groups"] == 7


@pytest.mark.parametrize("loss", ["stable_alignment", "dpo"])
def test_grad_accumulation_equals_one_batch(single_device, loss):
  """DPO weights micro-batches by their pairs, the others by their groups."""
  _assert_close(_run(loss, None, 4), single_device[loss], f"{loss} accum=4")


def test_chunked_logits_equal_full_logits(single_device):
  """`logits_chunk` (with a ragged last chunk) changes memory, not the loss or its gradients."""
  _assert_close(_run("stable_alignment", None, 1, logits_chunk=5), single_device["stable_alignment"],
                "logits_chunk=5")


def test_reference_values_are_meaningful(single_device):
  loss, metrics, _ = single_device["stable_alignment"]
  assert metrics["num_groups"] == 7 and metrics["hinge_active"] > 0
  assert loss == pytest.approx(metrics["sft"] + 0.2 * metrics["margin"], rel=1e-6)
  assert single_device["dpo"][1]["num_pairs"] == 14  # 7 groups x (3 kept responses - best)
