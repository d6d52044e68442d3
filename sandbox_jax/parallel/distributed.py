"""Multi-host start-up: `jax.distributed.initialize()` behind a config/env switch, and the few
helpers multi-process code needs.

On TPU pods and SLURM, JAX discovers the coordinator itself; elsewhere set
JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID (the launchers in `launch/` do).

Every process runs the same program on its part of global arrays. Host-side effects follow one
rule: every process computes, process 0 alone writes files and prints (`is_primary`), and a
process that reads what process 0 wrote first waits for it (`sync`). Arrays that span other
processes' devices reach the host through `to_host` (a collective: every process calls it).
"""

import os

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh

from sandbox_jax.parallel.sharding import replicated

_ENV_SWITCH = "SANDBOX_JAX_DISTRIBUTED"


def maybe_initialize_distributed(enabled: bool | None = None) -> bool:
  """Initialises the multi-controller runtime when `enabled` (or env SANDBOX_JAX_DISTRIBUTED=1).

  Returns whether it ran. Safe to call more than once.
  """
  if enabled is None:
    enabled = os.environ.get(_ENV_SWITCH, "0").lower() in ("1", "true", "yes")
  if not enabled:
    return False
  if jax.distributed.is_initialized():
    return True
  kwargs = {}
  if "JAX_COORDINATOR_ADDRESS" in os.environ:
    kwargs = dict(
        coordinator_address=os.environ["JAX_COORDINATOR_ADDRESS"],
        num_processes=int(os.environ["JAX_NUM_PROCESSES"]),
        process_id=int(os.environ["JAX_PROCESS_ID"]),
    )
  jax.distributed.initialize(**kwargs)
  return True


def is_primary() -> bool:
  """True in process 0, the one process that writes files and prints."""
  return jax.process_index() == 0


def sync(name: str) -> None:
  """A barrier across processes (no-op in a single process); `name` must match on all of them."""
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)


def to_host(tree):
  """Every array of `tree` as NumPy, on every process; arrays that span other processes' devices are
  all-gathered (a collective: every process must call this, in the same order)."""

  def one(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable and not x.is_fully_replicated:
      x = multihost_utils.process_allgather(x, tiled=True)
    return np.asarray(jax.device_get(x))

  return jax.tree.map(one, tree)


def replicate(tree, mesh: Mesh | None):
  """Places host values (NumPy or single-device arrays, equal on every process) as arrays
  replicated over `mesh`, which may span processes; without a mesh unchanged.

  On a one-device mesh too: the values then carry the mesh's sharding, as the outputs of programs
  over that mesh do, so feeding those outputs back in does not retrace (the society round)."""
  if mesh is None:
    return jax.tree.map(jax.numpy.asarray, tree)
  sharding = replicated(mesh)

  def one(x):
    value = np.asarray(x)
    return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])

  return jax.tree.map(one, tree)
