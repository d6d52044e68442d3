"""The SANDBOX world: an N×N grid of agents, neighbourhoods, rater draws and initial world views.

Reference rules (DESIGN.md §6.1): agent_id = row * N + col; neighbours are the agents within
Euclidean distance <= N // 2, excluding self; each draft gets k = min(4, #neighbours) raters drawn
without replacement from the neighbours.

Global interaction has two rules for the local share (`rater_plan`, config key
`society.global_local_share`):

* `'k'` (the project's default): k = min(max_raters, #neighbours) raters in all, of which
  max(1, int((1 - dropout) * k)) are local; the rest come from the whole grid. Works for any dropout.
* `'neighbours'` (official, `World.back_scatter` of agi-templar/Stable-Alignment): `tgt_agent_count`
  = max_raters raters in all, of which max(1, int((1 - dropout) * #neighbours)) are local, the rest
  from the whole grid. The official code asserts `tgt_agent_count > int((1 - dropout) * #neighbours)`
  and that the grid holds enough other agents; `rater_plan` raises the same conditions as config
  errors.

Global raters are drawn uniformly from the whole grid excluding self and the local picks (the
official `set(participants) - set(interactees) - {agent}`).
"""

import jax
import jax.numpy as jnp
import numpy as np

WORLD_VIEWS = ("all_good", "all_bad", "half_half", "mixed_half_half")


def grid_positions(n: int) -> np.ndarray:
  ids = np.arange(n * n)
  return np.stack([ids // n, ids % n], axis=1)


def neighbour_matrix(n: int) -> np.ndarray:
  """(A, A) bool: j is a neighbour of i (distance <= n // 2, j != i)."""
  pos = grid_positions(n).astype(np.float64)
  dist = np.sqrt(((pos[:, None, :] - pos[None, :, :]) ** 2).sum(-1))
  return (dist <= n // 2) & ~np.eye(n * n, dtype=bool)


def raters_per_draft(n: int, max_raters: int = 4) -> np.ndarray:
  """(A,) k = min(max_raters, #neighbours) of each agent (grids too small for k get fewer)."""
  counts = neighbour_matrix(n).sum(1)
  if counts.min() == 0:
    raise ValueError(f"config key society.grid_size: a {n}x{n} grid has agents without neighbours")
  return np.minimum(max_raters, counts).astype(np.int32)


GLOBAL_LOCAL_SHARES = ("k", "neighbours")


def rater_plan(n: int, max_raters: int = 4, global_dropout: float | None = None,
               local_share: str = "k") -> tuple[np.ndarray, np.ndarray]:
  """(k_A, local_A) host int32 arrays: raters per draft and how many of them are local neighbours.

  Local only (`global_dropout` None): k = local = min(max_raters, #neighbours). Global: see the module
  doc; the local count is computed with Python floats, exactly as the official `int((1 - d) * n)`.
  """
  counts = neighbour_matrix(n).sum(1)
  if counts.min() == 0:
    raise ValueError(f"config key society.grid_size: a {n}x{n} grid has agents without neighbours")
  if global_dropout is None:
    k = np.minimum(max_raters, counts).astype(np.int32)
    return k, k.copy()
  if local_share == "k":
    k = np.minimum(max_raters, counts).astype(np.int32)
    local = np.array([max(1, int((1 - global_dropout) * int(c))) for c in k], np.int32)
    return k, local
  if local_share != "neighbours":
    raise ValueError(f"config key society.global_local_share: {local_share!r} not in {GLOBAL_LOCAL_SHARES}")
  raw = np.array([int((1 - global_dropout) * int(c)) for c in counts], np.int32)
  if raw.max() >= max_raters:
    worst = int(np.argmax(raw))
    raise ValueError(
        f"config keys society.global_dropout / society.max_raters: agent {worst} keeps int((1 - "
        f"{global_dropout}) * {int(counts[worst])}) = {int(raw[worst])} local raters, not fewer than the "
        f"{max_raters} raters in all (the official code asserts tgt_agent_count > n_local_selected); "
        f"raise society.global_dropout or society.max_raters")
  if n * n - 1 < max_raters:
    raise ValueError(f"config key society.max_raters: {max_raters} raters need at least {max_raters + 1} "
                     f"agents per world, the {n}x{n} grid has {n * n}")
  return np.full(n * n, max_raters, np.int32), np.maximum(1, raw).astype(np.int32)


def draw_raters(key, neighbours_AxA, k_A, global_dropout: float | None = None, local_A=None):
  """Rater ids (A, K) with K = max(k_A), and a validity mask (A, K): row a's first k_A[a] are real.

  Uniform draws without replacement = the smallest i.i.d. uniform keys over the candidates. Global
  mode keeps `local_A[a]` local raters (from `rater_plan`; without it, max(1, int((1 - dropout) * k)))
  and fills the rest from the whole grid (never self, never twice). Local raters come first.
  """
  a = neighbours_AxA.shape[0]
  k_A = np.asarray(k_A)
  k_max = int(k_A.max())
  k = jnp.asarray(k_A)
  local_key, global_key = jax.random.split(key)
  local_AxA = jnp.where(neighbours_AxA, jax.random.uniform(local_key, (a, a)), jnp.inf)
  local_order = jnp.argsort(local_AxA, axis=1)
  columns = jnp.arange(k_max)[None, :]
  valid = columns < k[:, None]
  if global_dropout is None and local_A is None:
    return local_order[:, :k_max].astype(jnp.int32), valid
  if local_A is not None:
    n_local = jnp.asarray(np.asarray(local_A, np.int32))
  else:
    n_local = jnp.maximum(1, ((1 - global_dropout) * k).astype(jnp.int32))
  local_rank = jnp.argsort(local_order, axis=1)
  taken = (local_rank < n_local[:, None]) | jnp.eye(a, dtype=bool)
  global_order = jnp.argsort(jnp.where(taken, jnp.inf, jax.random.uniform(global_key, (a, a))), axis=1)
  from_global = jnp.take_along_axis(global_order, jnp.clip(columns - n_local[:, None], 0, a - 1), axis=1)
  raters = jnp.where(columns < n_local[:, None], local_order[:, :k_max], from_global)
  return raters.astype(jnp.int32), valid


def initial_labels(view: str, n: int, seed: int = 0) -> np.ndarray:
  """(A,) bool: True = 'good' agent, for one of WORLD_VIEWS."""
  a = n * n
  if view == "all_good":
    return np.ones(a, bool)
  if view == "all_bad":
    return np.zeros(a, bool)
  if view == "half_half":  # cells with row <= col are good, in id order, until half the grid
    pos = grid_positions(n)
    upper = np.flatnonzero(pos[:, 0] <= pos[:, 1])[: a // 2]
    labels = np.zeros(a, bool)
    labels[upper] = True
    return labels
  if view == "mixed_half_half":
    labels = np.zeros(a, bool)
    labels[np.random.default_rng(seed).permutation(a)[: a // 2]] = True
    return labels
  raise ValueError(f"config key society.world_view: unknown world view {view!r}; known: {WORLD_VIEWS}")
