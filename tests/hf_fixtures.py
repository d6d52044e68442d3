"""Tiny random `transformers` models of each supported family, saved as local checkpoints."""

from pathlib import Path

import numpy as np

KINDS = ("llama_gqa", "llama_tied", "llama3_scaled", "qwen2_bias", "qwen2_tied", "mistral", "gpt2")
# Peakier random weights for generation tests, so greedy choices are not decided by fp noise.
GENERATION_KINDS = {"llama_gen": "llama_gqa", "gpt2_gen": "gpt2", "qwen2_gen": "qwen2_bias"}


def hf_config(kind: str):
  import transformers as tf

  if kind in GENERATION_KINDS:
    config = hf_config(GENERATION_KINDS[kind])
    config.initializer_range = 0.25
    return config
  common = dict(vocab_size=320, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                num_attention_heads=4, max_position_embeddings=128, eos_token_id=2, bos_token_id=1)
  if kind == "llama_gqa":
    return tf.LlamaConfig(num_key_value_heads=2, tie_word_embeddings=False, **common)
  if kind == "llama_tied":
    return tf.LlamaConfig(num_key_value_heads=4, tie_word_embeddings=True, **common)
  if kind == "llama3_scaled":
    return tf.LlamaConfig(num_key_value_heads=2, tie_word_embeddings=False, rope_theta=500000.0,
                          rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                                            high_freq_factor=4.0, original_max_position_embeddings=32),
                          **common)
  if kind == "qwen2_bias":
    return tf.Qwen2Config(num_key_value_heads=2, tie_word_embeddings=False, **common)
  if kind == "qwen2_tied":
    return tf.Qwen2Config(num_key_value_heads=1, tie_word_embeddings=True, **common)
  if kind == "mistral":
    return tf.MistralConfig(num_key_value_heads=2, tie_word_embeddings=False, sliding_window=None, **common)
  if kind == "gpt2":
    return tf.GPT2Config(vocab_size=320, n_embd=64, n_layer=2, n_head=4, n_positions=128,
                         eos_token_id=2, bos_token_id=1)
  raise ValueError(kind)


def torch_model(kind: str, seed: int = 0):
  import torch
  import transformers as tf

  torch.manual_seed(seed)
  model = tf.AutoModelForCausalLM.from_config(hf_config(kind), dtype=torch.float32)
  with torch.no_grad():  # random biases and norm scales too, so a mix-up cannot hide behind zeros/ones
    for name, p in model.named_parameters():
      if name.endswith("bias") or "norm" in name or "ln_" in name:
        p.add_(0.1 * torch.randn_like(p))
  return model.eval()


def write_tiny_checkpoint(kind: str, directory: Path) -> Path:
  model = torch_model(kind)
  model.save_pretrained(directory, safe_serialization=True)
  return Path(directory)


def torch_logits(directory, tokens: np.ndarray, attention_mask: np.ndarray | None = None) -> np.ndarray:
  import torch
  import transformers as tf

  model = tf.AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()
  with torch.no_grad():
    if attention_mask is None:
      return model(torch.tensor(tokens)).logits.numpy()
    # Positions skip the padding, as `generate` computes them (plain forward would use arange).
    positions = np.maximum(np.cumsum(attention_mask, axis=1) - 1, 0)
    return model(torch.tensor(tokens), attention_mask=torch.tensor(attention_mask),
                 position_ids=torch.tensor(positions)).logits.numpy()
