"""Agent memory: fixed-capacity per-agent arrays, retrieval and update — all as array operations.

Each entry holds a question's tokens, the answer's tokens, the question's embedding (unit norm),
the round it was stored, an importance score and the question id. Reference retrieval is the single
nearest stored question by cosine distance, used only if the distance is < 0.3. The Generative
Agents option scores entries by recency, importance and relevance and takes the best.

Capacity: the store is a ring buffer, so a full store replaces its oldest entry — a seeded prior
memory first. The official agent's memory is an unbounded dict, so official mode needs
`capacity >= seeds + rounds` (at most one entry is stored per round): `capacity_without_eviction`
gives that size and `check_no_eviction` rejects a smaller `society.memory_capacity`.
"""

import dataclasses

import jax
import jax.numpy as jnp


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class Memory:
  question_tokens_AxCxQ: jax.Array
  question_lengths_AxC: jax.Array
  answer_tokens_AxCxR: jax.Array
  answer_lengths_AxC: jax.Array
  embeddings_AxCxD: jax.Array
  question_ids_AxC: jax.Array   # -1 for an empty slot
  rounds_AxC: jax.Array         # -1 for seeded prior memories
  importance_AxC: jax.Array     # 1..7 (observer alignment of the stored answer; seeds: their rating)
  next_slot_A: jax.Array        # ring buffer: the oldest entry is replaced when full

  @property
  def filled_AxC(self):
    return self.question_ids_AxC >= 0


def capacity_without_eviction(seed_count: int, rounds: int) -> int:
  """The smallest capacity that never evicts: every seed plus one stored answer per round."""
  if seed_count < 0 or rounds < 0:
    raise ValueError(f"need seed_count >= 0 and rounds >= 0, got {seed_count} and {rounds}")
  return seed_count + rounds


def check_no_eviction(capacity: int, seed_count: int, rounds: int) -> None:
  """Raises a config error if a run of `rounds` rounds could evict a memory (official mode)."""
  needed = capacity_without_eviction(seed_count, rounds)
  if capacity < needed:
    raise ValueError(
        f"config key society.memory_capacity: {capacity} would evict memories in official mode (the official "
        f"memory is unbounded); {seed_count} seeds (society.memory_seed_count) + {rounds} rounds "
        f"(society.rounds) need at least {needed}")


def empty_memory(agents: int, capacity: int, question_width: int, answer_width: int, embed_dim: int,
                 pad_id: int) -> Memory:
  return Memory(
      jnp.full((agents, capacity, question_width), pad_id, jnp.int32), jnp.zeros((agents, capacity), jnp.int32),
      jnp.full((agents, capacity, answer_width), pad_id, jnp.int32), jnp.zeros((agents, capacity), jnp.int32),
      jnp.zeros((agents, capacity, embed_dim), jnp.float32), jnp.full((agents, capacity), -1, jnp.int32),
      jnp.full((agents, capacity), -1, jnp.int32), jnp.zeros((agents, capacity), jnp.float32),
      jnp.zeros((agents,), jnp.int32))


def retrieve_nearest(memory: Memory, agent_ids_R, query_RxD, threshold: float = 0.3):
  """Reference retrieval for rows that read agent `agent_ids_R`'s memory: (entry_R, hit_R, dist_R)."""
  emb_RxCxD = memory.embeddings_AxCxD[agent_ids_R]
  cosine_RxC = jnp.einsum("rcd,rd->rc", emb_RxCxD, query_RxD)
  dist_RxC = jnp.where(memory.filled_AxC[agent_ids_R], 1.0 - cosine_RxC, jnp.inf)
  entry_R = jnp.argmin(dist_RxC, axis=1).astype(jnp.int32)
  dist_R = jnp.take_along_axis(dist_RxC, entry_R[:, None], axis=1)[:, 0]
  return entry_R, dist_R < threshold, dist_R


def retrieve_generative(memory: Memory, agent_ids_R, query_RxD, current_round, *, decay: float = 0.99,
                        weights=(1.0, 1.0, 1.0)):
  """Generative-Agents retrieval: argmax of recency + importance + relevance, each min-max scaled.

  Recency = decay ** (rounds since stored; seeded memories count from round 0). Returns
  (entry_R, hit_R, score_R); hit is False only for an agent with no memories.
  """
  filled = memory.filled_AxC[agent_ids_R]
  age = current_round - jnp.maximum(memory.rounds_AxC[agent_ids_R], 0)
  recency = decay ** age.astype(jnp.float32)
  importance = memory.importance_AxC[agent_ids_R]
  relevance = jnp.einsum("rcd,rd->rc", memory.embeddings_AxCxD[agent_ids_R], query_RxD)

  def scaled(x):
    lo = jnp.min(jnp.where(filled, x, jnp.inf), axis=1, keepdims=True)
    hi = jnp.max(jnp.where(filled, x, -jnp.inf), axis=1, keepdims=True)
    return jnp.where(hi > lo, (x - lo) / jnp.where(hi > lo, hi - lo, 1.0), 1.0)

  score = weights[0] * scaled(recency) + weights[1] * scaled(importance) + weights[2] * scaled(relevance)
  score = jnp.where(filled, score, -jnp.inf)
  entry_R = jnp.argmax(score, axis=1).astype(jnp.int32)
  return entry_R, jnp.any(filled, axis=1), jnp.take_along_axis(score, entry_R[:, None], axis=1)[:, 0]


def gather_entry(memory: Memory, agent_ids_R, entry_R):
  """(question tokens, lengths, answer tokens, lengths) of each row's retrieved entry."""
  return (memory.question_tokens_AxCxQ[agent_ids_R, entry_R], memory.question_lengths_AxC[agent_ids_R, entry_R],
          memory.answer_tokens_AxCxR[agent_ids_R, entry_R], memory.answer_lengths_AxC[agent_ids_R, entry_R])


def store(memory: Memory, question_tokens_AxQ, question_lengths_A, answer_tokens_AxR, answer_lengths_A,
          embeddings_AxD, question_ids_A, round_index, importance_A, only_if_new: bool = True) -> Memory:
  """Every agent stores (question, answer) in its next slot (official: only if the question is new)."""
  a = question_ids_A.shape[0]
  rows = jnp.arange(a)
  store_A = jnp.ones((a,), bool)
  if only_if_new:
    store_A = ~jnp.any(memory.question_ids_AxC == question_ids_A[:, None], axis=1)
  slot_A = memory.next_slot_A
  capacity = memory.question_ids_AxC.shape[1]

  def put(table, value):
    current = table[rows, slot_A]
    mask = store_A.reshape((a,) + (1,) * (current.ndim - 1))
    return table.at[rows, slot_A].set(jnp.where(mask, value.astype(table.dtype), current))

  return Memory(
      put(memory.question_tokens_AxCxQ, question_tokens_AxQ[:, :memory.question_tokens_AxCxQ.shape[2]]),
      put(memory.question_lengths_AxC, jnp.minimum(question_lengths_A, memory.question_tokens_AxCxQ.shape[2])),
      put(memory.answer_tokens_AxCxR, answer_tokens_AxR[:, :memory.answer_tokens_AxCxR.shape[2]]),
      put(memory.answer_lengths_AxC, jnp.minimum(answer_lengths_A, memory.answer_tokens_AxCxR.shape[2])),
      put(memory.embeddings_AxCxD, embeddings_AxD), put(memory.question_ids_AxC, question_ids_A),
      put(memory.rounds_AxC, jnp.full((a,), round_index, jnp.int32)), put(memory.importance_AxC, importance_A),
      jnp.where(store_A, (slot_A + 1) % capacity, slot_A).astype(jnp.int32))
