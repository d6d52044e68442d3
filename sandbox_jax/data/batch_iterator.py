"""A deterministic, resumable, shardable iterator of `GroupBatch`es.

Order: epoch e visits the groups in `default_rng([seed, e]).permutation(N)` (or 0..N-1 without
shuffling); process `shard_index` of `num_shards` takes every `num_shards`-th entry of that order,
starting at `shard_index`, so the shards partition the groups every epoch, groups stay whole, and
each process touches (`groups[i]`) only its own shard. `groups` may be any sequence with random
access (a list, or a lazy view over a TFDS data source).

All shards run the same number of steps per epoch, `ceil(ceil(N / num_shards) / G)` — a shard that
runs out fills its last batch(es) with empty groups — or, with `drop_remainder`,
`(N // num_shards) // G` full batches. Equal step counts keep SPMD processes in lock-step.

Response sampling (groups with more than R responses) uses `default_rng([seed, e, i])` for group
i in epoch e, so a batch depends only on (seed, epoch, position), never on what was iterated before.
That makes the state just `{'epoch', 'position'}` (the next batch to produce): `state_dict()` is a
JSON-serialisable dict for the trainer's checkpoint, and `load_state_dict(state)` continues exactly
where the saved iterator would have.

`append_eos` (config key `train.append_eos`) and `rows` (the row format: plain, or a chat model's,
`pipeline.records.chat_rows`) are `make_group_batch`'s: append_eos=False leaves the eos (end-of-turn)
off every response row, as the official trainer does.
"""

import math
from typing import Any, Sequence

import numpy as np

from sandbox_jax.data.batching import DEFAULT_MAX_RESPONSES, PLAIN_ROWS, GroupBatch, RowFormat, make_group_batch
from sandbox_jax.data.schemas import Group
from sandbox_jax.data.tokenizer import Tokenizer


class GroupBatchIterator:
  """Yields GroupBatch of shape (groups_per_batch, max_responses, max_len); see module doc."""

  def __init__(self, groups: Sequence[Group], tokenizer: Tokenizer, *, groups_per_batch: int,
               max_len: int, max_responses: int = DEFAULT_MAX_RESPONSES, seed: int = 0,
               shuffle: bool = True, num_shards: int = 1, shard_index: int = 0,
               drop_remainder: bool = False, num_epochs: int | None = None,
               min_prompt_tokens: int = 1, append_eos: bool = True, rows: RowFormat = PLAIN_ROWS):
    if groups_per_batch < 1:
      raise ValueError(f"groups_per_batch must be >= 1, got {groups_per_batch}")
    if not 0 <= shard_index < num_shards:
      raise ValueError(f"need 0 <= shard_index < num_shards, got {shard_index} and {num_shards}")
    self.groups, self.tokenizer = groups, tokenizer
    self.groups_per_batch, self.max_len, self.max_responses = groups_per_batch, max_len, max_responses
    self.seed, self.shuffle, self.num_epochs = seed, shuffle, num_epochs
    self.num_shards, self.shard_index = num_shards, shard_index
    self.min_prompt_tokens, self.append_eos, self.rows = min_prompt_tokens, append_eos, rows
    n = len(groups)
    if drop_remainder:
      self.steps_per_epoch = (n // num_shards) // groups_per_batch
    else:
      self.steps_per_epoch = math.ceil(math.ceil(n / num_shards) / groups_per_batch)
    if self.steps_per_epoch == 0:
      raise ValueError(f"{n} groups over {num_shards} shard(s) make no batch of "
                       f"{groups_per_batch} (drop_remainder={drop_remainder})")
    self.epoch, self.position = 0, 0
    self._order_epoch, self._order = None, None

  # -- state --------------------------------------------------------------------------------------
  def state_dict(self) -> dict[str, int]:
    return {"epoch": self.epoch, "position": self.position}

  def load_state_dict(self, state: dict[str, Any]) -> None:
    """Accepts what `state_dict` returned (ints may come back as NumPy integers)."""
    epoch, position = state.get("epoch"), state.get("position")
    integral = lambda x: isinstance(x, (int, np.integer)) and not isinstance(x, bool)
    if not (integral(epoch) and integral(position) and epoch >= 0
            and 0 <= position < self.steps_per_epoch):
      raise ValueError(f"bad iterator state {state!r} (steps_per_epoch={self.steps_per_epoch})")
    self.epoch, self.position = int(epoch), int(position)

  # -- order --------------------------------------------------------------------------------------
  def shard_order(self, epoch: int) -> np.ndarray:
    """The group indices this shard visits in `epoch`, in order."""
    if self._order_epoch != epoch:
      n = len(self.groups)
      order = (np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle
               else np.arange(n))
      self._order_epoch, self._order = epoch, order[self.shard_index::self.num_shards]
    return self._order

  def batch_group_ids(self, epoch: int, position: int) -> list[int]:
    """The group indices of batch `position` of `epoch` (fewer than G in a padded batch)."""
    G = self.groups_per_batch
    return [int(i) for i in self.shard_order(epoch)[position * G:(position + 1) * G]]

  # -- iteration ----------------------------------------------------------------------------------
  def __iter__(self):
    return self

  def __next__(self) -> GroupBatch:
    if self.num_epochs is not None and self.epoch >= self.num_epochs:
      raise StopIteration
    ids = self.batch_group_ids(self.epoch, self.position)
    batch = make_group_batch(
        [self.groups[i] for i in ids], self.tokenizer, max_len=self.max_len,
        groups_per_batch=self.groups_per_batch, max_responses=self.max_responses,
        rngs=[np.random.default_rng([self.seed, self.epoch, i]) for i in ids],
        min_prompt_tokens=self.min_prompt_tokens, append_eos=self.append_eos, rows=self.rows)
    self.position += 1
    if self.position == self.steps_per_epoch:
      self.epoch, self.position = self.epoch + 1, 0
    return batch
