"""Sharding helpers: shard a pytree by its logical annotations; constrain activations; the one
row ("batch") sharding and the replicated sharding every part uses."""

from collections.abc import Sequence

import jax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from sandbox_jax.parallel.rules import Rules, logical_to_spec


def _logical_names(variable) -> tuple[str | None, ...] | None:
  metadata = variable.get_metadata() if hasattr(variable, "get_metadata") else {}
  return metadata.get("out_sharding")


def logical_shardings(abstract_state: nnx.State, mesh: Mesh, rules: Rules) -> nnx.State:
  """NamedShardings for every variable of an (abstract) nnx.State from its logical axis names."""

  def to_sharding(variable):
    names = _logical_names(variable)
    value = variable.get_value() if hasattr(variable, "get_value") else variable.value
    if names is None:
      names = (None,) * len(value.shape)
    if len(names) != len(value.shape):
      raise ValueError(f"logical axes {names} do not match shape {value.shape}")
    return variable.replace(NamedSharding(mesh, logical_to_spec(names, rules, mesh, value.shape)))

  return jax.tree.map(to_sharding, abstract_state, is_leaf=lambda x: isinstance(x, nnx.Variable))


def constrain(x: jax.Array, logical_axes: Sequence[str | None], mesh: Mesh | None, rules: Rules) -> jax.Array:
  """`with_sharding_constraint` by logical names inside jit; identity without a mesh."""
  if mesh is None or mesh.size == 1:
    return x
  spec = logical_to_spec(logical_axes, rules, mesh, x.shape)
  return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, spec))


def replicated(mesh: Mesh) -> NamedSharding:
  """Every device holds the whole array."""
  return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh, rules: Rules, shape: Sequence[int] | None = None, batch_dim: int = 0) -> NamedSharding:
  """Rows split over the mesh axes the rules map the logical axis 'batch' to: dimension `batch_dim`
  (dimensions after it replicated). With `shape`, a row count that does not divide falls back to
  replication (`logical_to_spec`)."""
  names = (None,) * batch_dim + ("batch",)
  spec = logical_to_spec(names, rules, mesh, None if shape is None else tuple(shape)[:batch_dim + 1])
  return NamedSharding(mesh, spec)


def batch_shards(mesh: Mesh, rules: Rules) -> int:
  """How many ways `batch_sharding` splits the rows (the product of its mesh axes' sizes)."""
  spec = batch_sharding(mesh, rules).spec[0]
  axes = () if spec is None else (spec,) if isinstance(spec, str) else tuple(spec)
  size = 1
  for axis in axes:
    size *= mesh.shape[axis]
  return size
