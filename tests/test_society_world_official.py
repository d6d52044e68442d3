"""Official global interaction (World.back_scatter) and memory capacity without eviction."""

import jax
import numpy as np
import pytest

from sandbox_jax.society import memory as mem
from sandbox_jax.society.world import draw_raters, neighbour_matrix, rater_plan


def official_counts(n, dropout, tgt_agent_count):
  """Straight from agi-templar/Stable-Alignment World.back_scatter (local + global interaction)."""
  neighbours = neighbour_matrix(n).sum(1)
  local = [max(1, int((1 - dropout) * int(size))) for size in neighbours]
  return np.full(n * n, tgt_agent_count), np.array(local)


def test_official_plan_on_the_paper_grid():
  # the official single-thread run: dropout 0.8, tgt_agent_count 16, on the 10x10 grid
  k, local = rater_plan(10, 16, 0.8, "neighbours")
  want_k, want_local = official_counts(10, 0.8, 16)
  assert k.tolist() == want_k.tolist() and local.tolist() == want_local.tolist()
  neighbours = neighbour_matrix(10).sum(1)
  assert neighbours[0] == 25 and local[0] == 4          # corner: int(0.2 * 25) = int(4.999...) = 4
  assert neighbours[44] == 78 and local[44] == 15       # centre: int(0.2 * 78) = 15
  # the project's rule takes the local share of k = min(16, #neighbours) instead
  k_default, local_default = rater_plan(10, 16, 0.8, "k")
  assert k_default.tolist() == [16] * 100 and local_default[44] == 3   # int(0.2 * 16) = 3


def test_official_plan_rejects_what_the_official_code_asserts():
  # dropout 0.5 with tgt_agent_count 4 (the official multi-thread call) fails the official assert
  # `tgt_agent_count > n_local_selected` on a 10x10 grid: int(0.5 * 25) = 12 >= 4
  with pytest.raises(ValueError, match="society.global_dropout / society.max_raters"):
    rater_plan(10, 4, 0.5, "neighbours")
  with pytest.raises(ValueError, match="society.max_raters"):
    rater_plan(2, 4, 0.9, "neighbours")          # 3 other agents cannot give 4 ratings
  with pytest.raises(ValueError, match="society.global_local_share"):
    rater_plan(3, 4, 0.5, "everyone")
  k, local = rater_plan(3, 4, None)              # local only: min(4, #neighbours), all local
  assert k.tolist() == local.tolist() == [2, 3, 2, 3, 4, 3, 2, 3, 2]


@pytest.mark.parametrize("n,max_raters,dropout", [(10, 16, 0.8)])
def test_official_draw_counts(n, max_raters, dropout):
  matrix = neighbour_matrix(n)
  k, local = rater_plan(n, max_raters, dropout, "neighbours")
  for seed in range(2):
    raters, valid = map(np.asarray, draw_raters(jax.random.key(seed), matrix, k, dropout, local_A=local))
    assert raters.shape == (n * n, max_raters) and valid.all()
    for agent in range(n * n):
      picked = raters[agent].tolist()
      assert len(set(picked)) == max_raters and agent not in picked
      assert matrix[agent, picked[:local[agent]]].all()     # the local share comes first, from neighbours
      # the rest are drawn from the whole grid minus self and the local picks (may be neighbours too)
      assert len(picked[local[agent]:]) == max_raters - local[agent]


def test_global_fill_reaches_non_neighbours():
  matrix = neighbour_matrix(10)
  k, local = rater_plan(10, 16, 0.8, "neighbours")
  raters, _ = map(np.asarray, draw_raters(jax.random.key(0), matrix, k, 0.8, local_A=local))
  far = [not matrix[a, r] for a in range(100) for r in raters[a, local[a]:]]
  assert any(far)


def test_capacity_without_eviction():
  assert mem.capacity_without_eviction(50, 50) == 100
  mem.check_no_eviction(100, 50, 50)
  with pytest.raises(ValueError, match="society.memory_capacity: 64 .* at least 100"):
    mem.check_no_eviction(64, 50, 50)


def test_a_store_of_seeds_plus_rounds_evicts_no_seed():
  agents, seeds, rounds = 2, 3, 4
  capacity = mem.capacity_without_eviction(seeds, rounds)
  memory = mem.empty_memory(agents, capacity, 2, 2, 4, 0)
  ids = np.full((agents, capacity), -1, np.int32)
  ids[:, :seeds] = [[-2, -3, -4]] * agents
  memory = mem.Memory(memory.question_tokens_AxCxQ, memory.question_lengths_AxC, memory.answer_tokens_AxCxR,
                      memory.answer_lengths_AxC, memory.embeddings_AxCxD, jax.numpy.asarray(ids),
                      memory.rounds_AxC, memory.importance_AxC, jax.numpy.full((agents,), seeds, jax.numpy.int32))
  store = jax.jit(mem.store, static_argnames=("only_if_new",))
  tokens = jax.numpy.ones((agents, 2), jax.numpy.int32)
  lengths = jax.numpy.ones((agents,), jax.numpy.int32)
  for r in range(rounds):
    memory = store(memory, tokens, lengths, tokens, lengths, jax.numpy.ones((agents, 4)),
                       jax.numpy.asarray([10 + r, 20 + r]), r, jax.numpy.ones((agents,)))
  stored = np.asarray(memory.question_ids_AxC)
  assert stored[:, :seeds].tolist() == [[-2, -3, -4]] * agents     # every seed survives
  assert stored[0, seeds:].tolist() == [10, 11, 12, 13]
  # one round more would wrap around onto the first seed
  memory = store(memory, tokens, lengths, tokens, lengths, jax.numpy.ones((agents, 4)),
                     jax.numpy.asarray([99, 98]), rounds, jax.numpy.ones((agents,)))
  assert np.asarray(memory.question_ids_AxC)[0, 0] == 99


def test_default_rule_through_the_plan_draws_what_it_drew_before():
  matrix = neighbour_matrix(10)
  k, local = rater_plan(10, 4, 0.5, "k")
  assert local.tolist() == [2] * 100
  before = draw_raters(jax.random.key(3), matrix, k, 0.5)
  after = draw_raters(jax.random.key(3), matrix, k, 0.5, local_A=local)
  assert all(np.array_equal(a, b) for a, b in zip(before, after))
