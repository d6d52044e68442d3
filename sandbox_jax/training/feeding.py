"""Feeding the step: stage iterators → micro-batched, mesh-placed device arrays, resumably.

One `GroupBatchIterator` per stage; global step s draws from the stage whose step range holds s.
Each process builds only its own groups (the iterators shard the groups by process) and its
arrays become its part of one global array: the micro-batch axis A leads and the group axis is
sharded over the mesh's batch axes (`('data', 'fsdp')` by default), so groups stay whole on a
device. `state_dict()` holds every iterator's position (what the checkpoint stores).
"""

import logging
from collections.abc import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding

from sandbox_jax.data import PLAIN_ROWS, GroupBatch, GroupBatchIterator, RowFormat
from sandbox_jax.parallel.sharding import batch_sharding
from sandbox_jax.training.config import TrainConfig
from sandbox_jax.training.dataset import Stage
from sandbox_jax.training.reference import batch_reference
from sandbox_jax.training.step import split_microbatches


class BatchFeeder:
  def __init__(self, cfg: TrainConfig, stages: Sequence[Stage], tokenizer, mesh: Mesh | None, rules,
               reference: dict | None = None, rows: RowFormat = PLAIN_ROWS):
    processes = jax.process_count()
    if cfg.groups_per_batch % (processes * cfg.accum_steps):
      raise ValueError(f"config key train.groups_per_batch: {cfg.groups_per_batch} groups do not split into "
                       f"{processes} process(es) × train.accum_steps={cfg.accum_steps} micro-batches")
    self.cfg, self.reference = cfg, reference
    self.boundaries = np.cumsum([stage.steps for stage in stages])
    local = cfg.groups_per_batch // processes
    self.iterators = [
        GroupBatchIterator(stage.groups, tokenizer, groups_per_batch=local, max_len=cfg.max_len,
                           max_responses=cfg.max_responses, seed=cfg.seed + i, shuffle=True,
                           num_shards=processes, shard_index=jax.process_index(), append_eos=cfg.append_eos,
                           rows=rows)
        for i, stage in enumerate(stages)]
    self.sharding = self._sharding(mesh, rules)

  def _sharding(self, mesh: Mesh | None, rules):
    if mesh is None:
      return jax.sharding.SingleDeviceSharding(jax.devices()[0])
    micro = self.cfg.groups_per_batch // self.cfg.accum_steps
    sharding = batch_sharding(mesh, rules, (self.cfg.accum_steps, micro), batch_dim=1)
    if sharding.spec[1] is None and batch_sharding(mesh, rules, batch_dim=1).spec[1] is not None:
      if jax.process_count() > 1:
        raise ValueError(f"config key train.groups_per_batch: micro-batches of {micro} groups do not divide "
                         f"over the mesh's batch axes {dict(mesh.shape)}")
      logging.warning("micro-batches of %d groups do not divide over the mesh's batch axes %s; the batch is "
                      "replicated instead of sharded", micro, dict(mesh.shape))
    return sharding

  def stage_index(self, step: int) -> int:
    """The stage that global step `step` (0-based) trains."""
    return int(np.searchsorted(self.boundaries, step, side="right"))

  def _put(self, x: np.ndarray):
    if not isinstance(self.sharding, NamedSharding):
      return jax.device_put(x, self.sharding)
    global_shape = (x.shape[0], x.shape[1] * jax.process_count()) + x.shape[2:]
    return jax.make_array_from_process_local_data(self.sharding, x, global_shape)

  def next(self, step: int) -> tuple[GroupBatch, jax.Array | None]:
    """(batch_A, ref_A) for global step `step`, on the devices."""
    iterator = self.iterators[self.stage_index(step)]
    ref = None if self.reference is None else batch_reference(self.reference, iterator)
    batch = next(iterator)
    batch_A, ref_A = split_microbatches((batch, ref), self.cfg.accum_steps)
    return jax.tree.map(self._put, batch_A), None if ref_A is None else self._put(ref_A)

  def state_dict(self) -> list[dict]:
    return [it.state_dict() for it in self.iterators]

  def load_state_dict(self, states: list[dict]) -> None:
    if len(states) != len(self.iterators):
      raise ValueError(f"{len(states)} iterator states for {len(self.iterators)} stages")
    for it, state in zip(self.iterators, states):
      it.load_state_dict(state)
