"""`config.json` (Hugging Face) ↔ ModelConfig for llama, mistral, qwen2 and gpt2."""

import json
import logging
from pathlib import Path
from typing import Any

from sandbox_jax.model.config import ModelConfig

LLAMA_LIKE = ("llama", "mistral", "qwen2")
SUPPORTED_MODEL_TYPES = LLAMA_LIKE + ("gpt2",)


def read_config_json(directory: str | Path) -> dict[str, Any]:
  path = Path(directory) / "config.json"
  if not path.is_file():
    raise FileNotFoundError(f"{path}: no config.json in checkpoint directory {directory}")
  try:
    return json.loads(path.read_text())
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from e


def _require(hf: dict, key: str, path: str):
  if key not in hf:
    raise ValueError(f"{path}: missing key {key!r}")
  return hf[key]


def _rope(hf: dict) -> tuple[float, tuple | None]:
  """rope theta and Llama-3 scaling from either transformers-5 `rope_parameters` or v4 keys."""
  params = dict(hf.get("rope_parameters") or {})
  scaling = dict(hf.get("rope_scaling") or {})
  theta = float(params.get("rope_theta", hf.get("rope_theta", 10000.0)))
  merged = {**scaling, **params}
  rope_type = merged.get("rope_type", merged.get("type", "default"))
  if rope_type in (None, "default"):
    return theta, None
  if rope_type != "llama3":
    raise ValueError(f"config.json: rope type {rope_type!r} is not supported (default, llama3)")
  keys = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")
  return theta, tuple(sorted((k, float(merged[k])) for k in keys))


def model_config_from_hf(directory: str | Path, **overrides) -> ModelConfig:
  """Reads `config.json` of a local HF checkpoint directory into a ModelConfig."""
  hf = read_config_json(directory)
  path = str(Path(directory) / "config.json")
  model_type = hf.get("model_type")
  if model_type not in SUPPORTED_MODEL_TYPES:
    raise ValueError(f"{path}: unknown model_type {model_type!r}; supported: {SUPPORTED_MODEL_TYPES}")
  name = Path(directory).name or model_type
  if model_type == "gpt2":
    d = _require(hf, "n_embd", path)
    act = hf.get("activation_function", "gelu_new")
    if act not in ("gelu_new", "gelu_pytorch_tanh"):
      raise ValueError(f"{path}: activation_function {act!r} is not supported for gpt2 (gelu_new)")
    values = dict(
        family="gpt2", vocab_size=_require(hf, "vocab_size", path), embed_dim=d,
        mlp_dim=hf.get("n_inner") or 4 * d, num_layers=_require(hf, "n_layer", path),
        num_heads=_require(hf, "n_head", path), num_kv_heads=hf["n_head"], head_dim=d // hf["n_head"],
        max_positions=_require(hf, "n_positions", path), norm_eps=hf.get("layer_norm_epsilon", 1e-5),
        qkv_bias=True, out_bias=True, mlp_bias=True, tie_embeddings=True, name=name)
  else:
    act = hf.get("hidden_act", "silu")
    if act != "silu":
      raise ValueError(f"{path}: hidden_act {act!r} is not supported for {model_type} (silu)")
    window = hf.get("sliding_window")
    if model_type == "mistral" and window and window < hf.get("max_position_embeddings", 0):
      logging.warning("%s: sliding_window=%s is not applied; sequences longer than it differ "
                      "from the reference", path, window)
    heads = _require(hf, "num_attention_heads", path)
    d = _require(hf, "hidden_size", path)
    theta, scaling = _rope(hf)
    attention_bias = bool(hf.get("attention_bias", False))
    values = dict(
        family="llama", vocab_size=_require(hf, "vocab_size", path), embed_dim=d,
        mlp_dim=_require(hf, "intermediate_size", path), num_layers=_require(hf, "num_hidden_layers", path),
        num_heads=heads, num_kv_heads=hf.get("num_key_value_heads") or heads,
        head_dim=hf.get("head_dim") or d // heads, max_positions=hf.get("max_position_embeddings", 2048),
        norm_eps=hf.get("rms_norm_eps", 1e-6), rope_theta=theta, rope_scaling=scaling,
        qkv_bias=model_type == "qwen2" or attention_bias, out_bias=attention_bias,
        mlp_bias=bool(hf.get("mlp_bias", False)), tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
        name=name)
  values.update(overrides)
  return ModelConfig(**values)


def hf_config_dict(cfg: ModelConfig, model_type: str | None = None, **extra) -> dict[str, Any]:
  """A `config.json` dict that `transformers` loads as the same architecture."""
  from transformers import AutoConfig  # config classes only; no torch needed

  if cfg.family == "gpt2":
    model_type = "gpt2"
    kwargs = dict(vocab_size=cfg.vocab_size, n_embd=cfg.embed_dim, n_inner=cfg.mlp_dim,
                  n_layer=cfg.num_layers, n_head=cfg.num_heads, n_positions=cfg.max_positions,
                  layer_norm_epsilon=cfg.norm_eps, activation_function="gelu_new",
                  tie_word_embeddings=True)
  else:
    if model_type is None:
      model_type = "qwen2" if cfg.qkv_bias and not cfg.out_bias else "llama"
    if model_type == "qwen2" and (cfg.out_bias or cfg.mlp_bias or not cfg.qkv_bias):
      raise ValueError("a qwen2 export needs qkv bias and no output/mlp bias")
    if model_type == "llama" and cfg.qkv_bias != cfg.out_bias:
      raise ValueError("a llama export has attention_bias on q, k, v and o together")
    rope = {"rope_type": "default", "rope_theta": cfg.rope_theta}
    if cfg.rope_scaling:
      scaling = cfg.rope_scaling_dict
      scaling["original_max_position_embeddings"] = int(scaling["original_max_position_embeddings"])  # an int in HF
      rope = {"rope_type": "llama3", "rope_theta": cfg.rope_theta, **scaling}
    kwargs = dict(vocab_size=cfg.vocab_size, hidden_size=cfg.embed_dim, intermediate_size=cfg.mlp_dim,
                  num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads,
                  num_key_value_heads=cfg.num_kv_heads, head_dim=cfg.head_dim,
                  max_position_embeddings=cfg.max_positions, rms_norm_eps=cfg.norm_eps,
                  rope_parameters=rope, tie_word_embeddings=cfg.tie_embeddings, hidden_act="silu")
    if model_type in ("llama", "mistral"):
      kwargs.update(attention_bias=cfg.qkv_bias, mlp_bias=cfg.mlp_bias)
  kwargs.update(extra)
  return AutoConfig.for_model(model_type, **kwargs).to_dict()
