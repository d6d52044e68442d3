"""The model and tokenizer a run config names: a local HF checkpoint directory, a GGUF file (a path,
or `pkg:<package>/<file>` inside an installed package), or a random init."""

from collections.abc import Mapping
from pathlib import Path

from jax.sharding import Mesh

from sandbox_jax.model.config import model_config_from_dict
from sandbox_jax.model.factory import create_model
from sandbox_jax.model.hf_checkpoint import load_hf_checkpoint, load_tensors
from sandbox_jax.model.hf_tensors import tensor_maps
from sandbox_jax.model.tokenizer import Tokenizer, load_tokenizer
from sandbox_jax.model.transformer import Transformer
from sandbox_jax.parallel.rules import DEFAULT_RULES, Rules, rules_from_config


def load_gguf_checkpoint(spec: str | Path, mesh: Mesh | None = None, rules: Rules = DEFAULT_RULES,
                         **config_overrides) -> Transformer:
  """A GGUF file (path or `pkg:<package>/<file>`) into a (sharded) Transformer, dequantized tensor
  by tensor (see model/gguf.py)."""
  from sandbox_jax.model.gguf import GGUFTensors, gguf_model_config

  cfg = gguf_model_config(str(spec), **config_overrides)
  with GGUFTensors(str(spec), cfg) as reader:
    return load_tensors(reader, cfg, tensor_maps(cfg), mesh, rules)


def load_checkpoint(checkpoint: str | Path, mesh: Mesh | None = None, rules: Rules = DEFAULT_RULES,
                    **config_overrides) -> Transformer:
  """An HF checkpoint directory or a GGUF file, by its name."""
  from sandbox_jax.model.gguf import is_gguf

  load = load_gguf_checkpoint if is_gguf(checkpoint) else load_hf_checkpoint
  return load(checkpoint, mesh=mesh, rules=rules, **config_overrides)


def load_model(model_cfg: Mapping, checkpoint: str, mesh: Mesh | None, rules, seed: int = 0) -> Transformer:
  """`checkpoint` (HF directory or GGUF file) with `model_cfg` as overrides, or a random init of `model_cfg`."""
  rules = rules_from_config(rules)
  if checkpoint:
    return load_checkpoint(checkpoint, mesh=mesh, rules=rules, **dict(model_cfg))
  return create_model(model_config_from_dict(model_cfg), seed=seed, mesh=mesh, rules=rules)


def load_model_and_tokenizer(config, mesh: Mesh | None) -> tuple[Transformer, Tokenizer]:
  """From a run config's keys `model`, `checkpoint`, `tokenizer`, `logical_axis_rules`, `seed`."""
  model = load_model(config.model, config.checkpoint, mesh, config.logical_axis_rules, config.seed)
  return model, load_tokenizer(config.tokenizer, model.cfg.vocab_size)
