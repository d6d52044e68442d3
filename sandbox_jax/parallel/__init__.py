"""parallel: meshes, logical-axis rules, sharding helpers, multi-host start-up.

Parallelism is a config change, never a code change: every parameter and main activation carries
logical axis names (`embed`, `mlp`, `heads`, ...), and a rule table in the config maps them onto the
mesh axes `('data', 'fsdp', 'tensor')`.
"""

from sandbox_jax.parallel.distributed import is_primary, maybe_initialize_distributed, replicate, sync, to_host
from sandbox_jax.parallel.mesh import MESH_AXES, make_mesh
from sandbox_jax.parallel.rules import DEFAULT_RULES, logical_to_spec, rules_from_config
from sandbox_jax.parallel.sharding import batch_sharding, batch_shards, constrain, logical_shardings, replicated

__all__ = [
    "MESH_AXES",
    "DEFAULT_RULES",
    "batch_sharding",
    "batch_shards",
    "constrain",
    "is_primary",
    "logical_shardings",
    "logical_to_spec",
    "make_mesh",
    "maybe_initialize_distributed",
    "replicate",
    "replicated",
    "rules_from_config",
    "sync",
    "to_host",
]
