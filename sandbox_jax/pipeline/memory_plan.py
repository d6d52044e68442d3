"""Memory plan: what the train step and the society round need per device, before anything is allocated.

Both programs are compiled ahead of time — `jax.jit(f).lower(*abstract_args).compile()` — on
ShapeDtypeStructs that carry the run's shardings: the model comes from `abstract_model`, the train
state from `abstract_train_state`, so no parameter is ever allocated and a 7B plan runs on a laptop
(fake CPU devices stand in for the mesh: `XLA_FLAGS=--xla_force_host_platform_device_count=8`).
XLA's `memory_analysis()` of the compiled per-device program gives its argument, output, alias
(donated inputs updated in place) and temp bytes; the plan splits the arguments by their shardings
into parameters, optimizer state and inputs (batch; society memory and questions), and reports

  total = arguments + outputs − aliased + temp        (per device; generated code not counted)

The society round takes the agent and the observer model as two arguments; the pipeline passes the
same model twice (one set of buffers), so the plan counts its parameters once. The round's KV cache
is part of XLA's temp; the plan also shows the largest single generation call's cache — one chunk
of `society.chunk_rows` rows — (k, v and validity for every layer, sharded by the rules'
`batch`/`kv_heads` axes) computed from its shape.

Largest batch that fits: the plan compiles at 1 and 2 units (a unit is the smallest batch that
splits evenly: lcm(accum_steps, data·fsdp) groups for training, one world of grid² agents for the
round), fits the linear model memory(b) = fixed + per_unit·b through those two points to guess the
answer, then checks the guess and its neighbour by compiling, and brackets the answer by doubling
and bisection wherever the guess was wrong. Every reported fit is a compiled plan, never an
extrapolation; it assumes memory grows with the batch (XLA's choices can make it jump a little).

The numbers are those of the backend that compiles: planned on a GPU/TPU host they are that
device's; planned on CPU stand-ins they are estimates (CPU XLA fuses differently and may keep f32
copies of bf16 operands).
"""

import dataclasses
import json
import math
import tempfile
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from sandbox_jax.data import GroupBatch
from sandbox_jax.model.config import ModelConfig, model_config_from_dict
from sandbox_jax.model.factory import abstract_model
from sandbox_jax.model.gguf import gguf_model_config, is_gguf
from sandbox_jax.model.hf_config import model_config_from_hf
from sandbox_jax.model.tokenizer import ByteTokenizer, load_tokenizer
from sandbox_jax.parallel.rules import logical_to_spec, rules_from_config
from sandbox_jax.parallel.sharding import logical_shardings
from sandbox_jax.pipeline.simulate import society_config
from sandbox_jax.society.memory import empty_memory
from sandbox_jax.society.round import Questions, SocietyRound, SocietyState
from sandbox_jax.training.config import TrainConfig
from sandbox_jax.training.optimizer import make_optimizer
from sandbox_jax.training.state import abstract_train_state, split_model, state_shardings
from sandbox_jax.training.step import make_train_step

GiB = 1 << 30


@dataclasses.dataclass
class MemoryPlan:
  """Per-device bytes of one compiled program."""
  program: str          # 'train step' | 'society round'
  batch: int            # groups per optimizer step | agents per round
  params: int
  optimizer: int        # moments, counts, step and RNG (train step only)
  inputs: int           # batch (train); society memory, labels, questions, key (round)
  temp: int             # activations and temporaries (XLA temp), KV caches included
  outputs: int          # outputs not written in place over a donated input
  total: int
  kv_cache: int = 0     # round: the largest generation call's cache (part of temp)
  analysis: dict = dataclasses.field(default_factory=dict)  # XLA's memory_analysis() fields


# -- abstract inputs -------------------------------------------------------------------------------
def plan_model_config(config) -> tuple[ModelConfig, str]:
  """(ModelConfig, where it came from) without reading any weights.

  `config.checkpoint`'s config.json when that file exists, else `config.architecture` (a
  config.json dict written in the config), else `config.model` alone (a random-init model).
  `config.model` is applied on top as overrides in the first two cases, as the loaders do.
  """
  overrides = dict(config.model)
  checkpoint = config.get("checkpoint", "")
  if checkpoint and is_gguf(checkpoint):
    return gguf_model_config(checkpoint, **overrides), f"{checkpoint} (GGUF metadata)"
  if checkpoint and (Path(checkpoint) / "config.json").is_file():
    return model_config_from_hf(checkpoint, **overrides), str(Path(checkpoint) / "config.json")
  architecture = config.get("architecture")
  if architecture:
    overrides.setdefault("name", Path(checkpoint).name or str(architecture.get("model_type", "model")))
    with tempfile.TemporaryDirectory() as tmp:
      (Path(tmp) / "config.json").write_text(json.dumps(architecture.to_dict() if hasattr(architecture, "to_dict")
                                                        else dict(architecture)))
      return model_config_from_hf(tmp, **overrides), "config.architecture"
  if checkpoint:
    raise FileNotFoundError(f"config key checkpoint: {Path(checkpoint) / 'config.json'} does not exist and the "
                            "config has no `architecture` (a config.json dict) to plan from")
  return model_config_from_dict(overrides), "config.model"


def _tokenizer(config, vocab_size: int):
  """The run's tokenizer, or the byte tokenizer as a stand-in (it only sizes small constant tables)."""
  spec = str(config.get("tokenizer", "byte"))
  if (spec == "byte" or is_gguf(spec) or (Path(spec) / "tokenizer.json").is_file()
      or (Path(spec) / "tokenizer_config.json").is_file()):
    return load_tokenizer(spec, vocab_size)
  return ByteTokenizer()


def abstract_sharded_model(cfg: ModelConfig, mesh: Mesh, rules):
  """The model with ShapeDtypeStructs that carry each parameter's NamedSharding."""
  graphdef, state = nnx.split(abstract_model(cfg, mesh, rules))
  shardings = logical_shardings(state, mesh, rules)
  state = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), state, shardings)
  return nnx.merge(graphdef, state)


def device_bytes(tree) -> int:
  """Bytes one device holds of a pytree of sharded ShapeDtypeStructs (the largest shard)."""
  total = 0
  for x in jax.tree.leaves(tree):
    shape = x.sharding.shard_shape(x.shape) if getattr(x, "sharding", None) is not None else x.shape
    itemsize = 8 if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else np.dtype(x.dtype).itemsize
    total += math.prod(shape) * itemsize
  return total


def _abstract(shape, dtype, mesh: Mesh, spec=PartitionSpec()):
  return jax.ShapeDtypeStruct(shape, dtype, sharding=NamedSharding(mesh, spec))


def _plan(program: str, batch: int, compiled, params: int, optimizer: int, inputs: int, duplicate: int = 0,
          kv_cache: int = 0) -> MemoryPlan:
  stats = compiled.memory_analysis()
  analysis = {k: int(getattr(stats, f"{k}_size_in_bytes")) for k in
              ("argument", "output", "alias", "temp", "generated_code")}
  outputs = analysis["output"] - analysis["alias"]
  total = analysis["argument"] - duplicate + outputs + analysis["temp"]
  return MemoryPlan(program, batch, params, optimizer, inputs, analysis["temp"], outputs, total, kv_cache, analysis)


def _section(config, name: str):
  if config.get(name) is None:
    raise ValueError(f"config key {name}: missing; the memory plan needs the run config's `{name}` section")
  section = config[name]
  return section.to_dict() if hasattr(section, "to_dict") else dict(section)


# -- the two programs ------------------------------------------------------------------------------
def _batch_shards(config, mesh: Mesh) -> int:
  """How many ways the rules' `batch` axis splits over the mesh (data·fsdp by default)."""
  spec = logical_to_spec(("batch",), rules_from_config(config.logical_axis_rules), mesh)
  axes = () if spec[0] is None else (spec[0],) if isinstance(spec[0], str) else spec[0]
  return math.prod(mesh.shape[a] for a in axes)


def train_batch_unit(config, mesh: Mesh) -> int:
  """The smallest groups_per_batch whose micro-batches split evenly over the mesh's batch axes."""
  return TrainConfig.from_dict(_section(config, "train")).accum_steps * _batch_shards(config, mesh)


_MEMO: dict = {}   # plans by (program, config, mesh, size): the batch searches and the table share compiles


def _memoized(fn):
  def planned(config, mesh: Mesh, size: int | None = None) -> MemoryPlan:
    key = (fn.__name__, json.dumps(config.to_dict(), sort_keys=True, default=str), mesh, size)
    if key not in _MEMO:
      while len(_MEMO) >= 64:
        _MEMO.pop(next(iter(_MEMO)))
      _MEMO[key] = fn(config, mesh, size)
    return _MEMO[key]

  planned.__name__, planned.__doc__ = fn.__name__, fn.__doc__
  return planned


@_memoized
def plan_train_step(config, mesh: Mesh, groups_per_batch: int | None = None) -> MemoryPlan:
  """Compiles the Stable Alignment train step (`config.train`) for `mesh` on abstract inputs."""
  section = _section(config, "train")
  if groups_per_batch is not None:
    section["groups_per_batch"] = int(groups_per_batch)
  cfg = TrainConfig.from_dict(section)
  rules = rules_from_config(config.logical_axis_rules)
  model_cfg, _ = plan_model_config(config)
  graphdef, params, rest = split_model(abstract_sharded_model(model_cfg, mesh, rules))
  if jax.tree.leaves(rest):
    raise ValueError("the model has non-parameter state; the memory plan compiles parameters only")
  optimizer = make_optimizer(cfg)   # as the trainer's `_optimizer_and_step`, without its cache
  shardings = state_shardings(params, optimizer, mesh)
  state = abstract_train_state(params, optimizer, shardings)
  a, g, r, t = cfg.accum_steps, cfg.groups_per_batch // cfg.accum_steps, cfg.max_responses, cfg.max_len
  spec = logical_to_spec((None, "batch"), rules, mesh, (a, g))   # as the BatchFeeder places it
  batch = GroupBatch(*(_abstract(shape, dtype, mesh, spec) for shape, dtype in (
      ((a, g, r, t), jnp.int32), ((a, g, r, t), jnp.int32), ((a, g, r, t), jnp.float32), ((a, g, r, t), jnp.bool_),
      ((a, g, r), jnp.float32), ((a, g, r), jnp.bool_), ((a, g), jnp.bool_))))
  ref = _abstract((a, g, r), jnp.float32, mesh, spec) if cfg.loss == "dpo" else None
  lr = _abstract((), jnp.float32, mesh)
  compiled = make_train_step(cfg, graphdef, rest, optimizer, shardings).lower(state, batch, ref, lr).compile()
  return _plan("train step", cfg.groups_per_batch, compiled, device_bytes(state.params),
               device_bytes((state.opt_state, state.step)), device_bytes((batch, ref, lr)))


def _kv_cache_bytes(model_cfg: ModelConfig, mesh: Mesh, rules, calls: list[tuple[int, int]]) -> int:
  """Per-device bytes of the largest KV cache among generation calls of (rows, cache length)."""
  best = 0
  for rows, length in calls:
    kv_shape = (model_cfg.num_layers, rows, model_cfg.num_kv_heads, length, model_cfg.head_dim)
    kv = logical_to_spec(("layers", "batch", "kv_heads", "cache_length", "head_dim"), rules, mesh, kv_shape)
    valid = logical_to_spec(("batch", "cache_length"), rules, mesh, (rows, length))
    k_or_v = _abstract(kv_shape, model_cfg.compute_dtype, mesh, kv)
    cache = (k_or_v, k_or_v, _abstract((rows, length), jnp.bool_, mesh, valid))
    best = max(best, device_bytes(cache))
  return best


@_memoized
def plan_society_round(config, mesh: Mesh, num_worlds: int | None = None) -> MemoryPlan:
  """Compiles one Back-Scatter round (`config.society`) for `mesh` on abstract inputs."""
  section = _section(config, "society")
  if num_worlds is not None:
    worlds = list(section.get("worlds") or [("all_good", 0)])
    section["worlds"] = [tuple(worlds[i % len(worlds)][:1]) + (i,) for i in range(int(num_worlds))]
  cfg = society_config(section)
  rules = rules_from_config(config.logical_axis_rules)
  model_cfg, _ = plan_model_config(config)
  tokenizer = _tokenizer(config, model_cfg.vocab_size)
  model = abstract_sharded_model(model_cfg, mesh, rules)
  round_fn = SocietyRound(cfg, tokenizer)
  n, c = cfg.num_agents, cfg.memory_capacity
  memory = jax.eval_shape(lambda: empty_memory(n, c, cfg.question_tokens, cfg.answer_tokens, model_cfg.embed_dim,
                                               tokenizer.pad_id))
  rep = lambda x: _abstract(x.shape, x.dtype, mesh)   # the runner's state and questions are replicated
  state = SocietyState(jax.tree.map(rep, memory), _abstract((), jnp.int32, mesh), _abstract((n,), jnp.bool_, mesh))
  questions = Questions(_abstract((n, cfg.question_tokens), jnp.int32, mesh), _abstract((n,), jnp.int32, mesh),
                        _abstract((n,), jnp.int32, mesh))
  key = rep(jax.eval_shape(lambda: jax.random.key(0)))
  compiled = round_fn.step.lower(model, model, state, questions, key).compile()
  params = device_bytes(nnx.state(model, nnx.Param))
  reason = (1 + len(round_fn.tables.reason_prefix) + cfg.reason_tokens) if cfg.reason_tokens > 0 else 0
  chunk = lambda rows: min(rows, cfg.chunk_rows) if cfg.chunk_rows > 0 else rows
  calls = [(chunk(n), cfg.draft_prompt_tokens + cfg.answer_tokens),
           (chunk(n), cfg.revise_prompt_tokens + cfg.answer_tokens),
           (chunk(2 * n), cfg.observer_prompt_tokens + reason),
           (chunk(n * round_fn.k), cfg.feedback_prompt_tokens + reason)]
  return _plan("society round", n, compiled, params, 0, device_bytes((state, questions, key)), duplicate=params,
               kv_cache=_kv_cache_bytes(model_cfg, mesh, rules, calls))


# -- the largest batch that fits -------------------------------------------------------------------
def largest_fitting(plan_units: Callable[[int], MemoryPlan], limit_bytes: int,
                    max_units: int = 1 << 16) -> tuple[int, dict[int, MemoryPlan]]:
  """(u, plans): the largest u ≤ max_units with plan_units(u).total ≤ limit_bytes (0 if not even
  u = 1 fits), and every plan compiled on the way, by units. See the module doc for the search."""
  plans: dict[int, MemoryPlan] = {}
  lo, hi = 0, max_units + 1   # lo fits (0: none known), hi does not

  def probe(u: int):
    nonlocal lo, hi
    if lo < u < hi:
      plans[u] = plan_units(u)
      if plans[u].total <= limit_bytes:
        lo = u
      else:
        hi = u

  probe(1)
  if lo == 0:
    return 0, plans
  probe(2)
  if lo == 2:   # linear guess through the two compiles, then its neighbour
    per_unit = plans[2].total - plans[1].total
    guess = max_units if per_unit <= 0 else 1 + (limit_bytes - plans[1].total) // per_unit
    guess = int(min(max(guess, 3), max_units))
    probe(guess)
    if lo == guess:
      probe(guess + 1)
  step = 1
  while hi == max_units + 1 and lo < max_units:   # doubling until something does not fit
    step *= 2
    probe(min(lo + step, max_units))
  while hi - lo > 1:
    probe((lo + hi) // 2)
  return lo, plans


def largest_train_batch(config, mesh: Mesh, limit_bytes: int) -> tuple[int, MemoryPlan | None]:
  """(groups_per_batch, its plan): the largest global train batch whose step fits `limit_bytes`."""
  unit = train_batch_unit(config, mesh)
  units, plans = largest_fitting(lambda u: plan_train_step(config, mesh, u * unit), limit_bytes)
  return units * unit, plans.get(units)


def society_world_unit(config, mesh: Mesh) -> int:
  """The fewest worlds whose agents split evenly over the mesh's batch axes."""
  grid = int(_section(config, "society").get("grid_size", 10))
  return _batch_shards(config, mesh) // math.gcd(grid * grid, _batch_shards(config, mesh))


def largest_society(config, mesh: Mesh, limit_bytes: int) -> tuple[int, MemoryPlan | None]:
  """(worlds, its plan): the most worlds of the configured grid (a multiple of `society_world_unit`)
  whose round fits `limit_bytes`."""
  unit = society_world_unit(config, mesh)
  units, plans = largest_fitting(lambda u: plan_society_round(config, mesh, u * unit), limit_bytes, max_units=1 << 10)
  return units * unit, plans.get(units)


def device_memory_limit(config, gib: float | None = None) -> int:
  """Bytes per device to fit: `gib`, else config.hardware.device_memory_gb, else what the first
  device reports (GPU/TPU `bytes_limit`), else 16 GiB."""
  if gib is None and config.get("hardware") is not None:
    gib = config.hardware.get("device_memory_gb")
  if gib is None:
    stats = jax.devices()[0].memory_stats() or {}
    if stats.get("bytes_limit"):
      return int(stats["bytes_limit"])
    gib = 16.0
  if not gib > 0:
    raise ValueError(f"device memory must be > 0 GiB, got {gib}")
  return int(gib * GiB)


# -- the table -------------------------------------------------------------------------------------
def format_plans(plans: list[MemoryPlan]) -> str:
  mib = lambda b: f"{b / 2**20:,.1f}"
  head = ("program", "batch", "params", "optimizer", "inputs", "temp", "(kv cache)", "outputs", "total")
  rows = [head] + [(p.program, f"{p.batch:,}", mib(p.params), mib(p.optimizer), mib(p.inputs), mib(p.temp),
                    mib(p.kv_cache) if p.kv_cache else "-", mib(p.outputs), mib(p.total)) for p in plans]
  widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
  fmt = lambda row: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
  return "\n".join([fmt(rows[0]), "  ".join("-" * w for w in widths)] + [fmt(row) for row in rows[1:]])


def plan_report(config, mesh: Mesh, device_memory_bytes: int | None = None) -> str:
  """The `sandbox-jax plan` output: both programs at the config's sizes, in MiB per device, and the
  largest train batch and society that fit `device_memory_bytes`."""
  model_cfg, source = plan_model_config(config)
  count = sum(math.prod(x.shape) for x in jax.tree.leaves(nnx.state(abstract_model(model_cfg), nnx.Param)))
  lines = [f"model      {model_cfg.name} ({model_cfg.family}) from {source}: {count:,} parameters, "
           f"param_dtype {model_cfg.param_dtype}, compute {model_cfg.dtype}, remat {model_cfg.remat_policy}",
           f"mesh       {dict(mesh.shape)} on {mesh.size} {mesh.devices.flat[0].platform} devices "
           f"(memory per device, MiB; planned on abstract shapes, nothing allocated)", ""]
  plans = [plan_train_step(config, mesh)] if config.get("train") is not None else []
  plans += [plan_society_round(config, mesh)] if config.get("society") is not None else []
  lines.append(format_plans(plans))
  shards = _batch_shards(config, mesh)
  if config.get("society") is not None and plans[-1].batch % shards:
    lines.append(f"note: the round's {plans[-1].batch} agents do not split over the mesh's {shards} batch shards, so "
                 f"calls over the agents run replicated; use a multiple of {society_world_unit(config, mesh)} "
                 "world(s) or a tensor axis")
  if device_memory_bytes:
    lines += ["", f"largest that fits {device_memory_bytes / GiB:.3g} GiB per device:"]
    if config.get("train") is not None:
      groups, plan = largest_train_batch(config, mesh, device_memory_bytes)
      lines.append(f"  train.groups_per_batch = {groups:,}" + (f" ({plan.total / GiB:.3g} GiB)" if plan else
                                                               " (not even the smallest batch fits)"))
    if config.get("society") is not None:
      worlds, plan = largest_society(config, mesh, device_memory_bytes)
      grid = config.society.get("grid_size", 10)
      lines.append(f"  society: {worlds:,} world(s) of {grid}×{grid} agents" +
                   (f" ({plan.batch:,} agents, {plan.total / GiB:.3g} GiB)" if plan else " (not even one world fits)"))
  return "\n".join(lines)
