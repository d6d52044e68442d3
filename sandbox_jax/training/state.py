"""The train state: one pytree of parameters, optimizer state, step and RNG, placed by the mesh.

The model is split once into its static graph (`graphdef`) and its parameters (an `nnx.State`);
the jitted step merges them back. Parameters keep the shardings the model was built with (its
logical axis rules); the optimizer's per-parameter moments get the same shardings and everything
else (counts, step, RNG) is replicated, so FSDP shards the whole state, not only the weights.

The RNG (a raw uint32 key) is part of the state so that a resumed run continues the same random
stream; the step splits it every update. The decoder has no stochastic layers, so today no
computation draws from it.
"""

import dataclasses

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class TrainState:
  params: nnx.State
  opt_state: optax.OptState
  step: jax.Array   # int32 scalar: optimizer updates done


def split_model(model) -> tuple[nnx.GraphDef, nnx.State, nnx.State]:
  """(graphdef, params, rest): `nnx.merge(graphdef, params, rest)` rebuilds the model."""
  return nnx.split(model, nnx.Param, ...)


def state_shardings(params: nnx.State, optimizer: optax.GradientTransformation, mesh: Mesh | None):
  """A TrainState of shardings; without a mesh, everything on the first device.

  Explicit (committed) placements keep the jitted step's compilation key the same whether the
  state was freshly made or restored from a checkpoint.
  """
  if mesh is None:
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    return jax.tree.map(lambda _: device, jax.eval_shape(
        lambda p: TrainState(p, optimizer.init(p), jnp.zeros((), jnp.int32)), params))
  replicated = NamedSharding(mesh, PartitionSpec())
  param_shardings = jax.tree.map(lambda x: x.sharding, params)
  abstract_opt = jax.eval_shape(optimizer.init, params)
  opt_shardings = optax.tree_map_params(optimizer, lambda _, s: s, abstract_opt, param_shardings,
                                        transform_non_params=lambda _: replicated)
  return TrainState(param_shardings, opt_shardings, replicated)


def init_train_state(params: nnx.State, optimizer: optax.GradientTransformation, shardings) -> TrainState:
  """A fresh state: a copy of the parameters, zero moments created in their shards, step 0."""

  def init(params):
    return TrainState(params, optimizer.init(params), jnp.zeros((), jnp.int32))

  return jax.jit(init, out_shardings=shardings)(params)


def abstract_train_state(params: nnx.State, optimizer: optax.GradientTransformation, shardings):
  """The TrainState's shapes, dtypes and shardings (the restore target), allocating nothing."""
  abstract = jax.eval_shape(lambda p: TrainState(p, optimizer.init(p), jnp.zeros((), jnp.int32)), params)
  return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings)
