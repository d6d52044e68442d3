"""Generated tokens/s: our jitted decode loop vs `transformers` PyTorch `generate`, CPU, greedy.

  python benchmarks/generate.py                 # batches 1, 16, 64, 256; tiny and small models
  python benchmarks/generate.py --quick         # batches 1 and 64, tiny only

Same weights, same prompts (left-padded), same number of new tokens (EOS disabled on both sides).
Also prints the machine's measured matmul peak, the share of it our decode reaches (model FLOPs,
2 x parameters per token + attention), and the KV-cache bytes.
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.common import (add_host_args, measured_peak_flops, report_host, timeit, torch_llama,  # noqa: E402
                               torch_to_ours)
from sandbox_jax.inference import InferenceEngine  # noqa: E402
from sandbox_jax.model import KVCache, ModelConfig  # noqa: E402

SIZES = {
    "tiny (~5M)": ModelConfig(vocab_size=4096, embed_dim=256, mlp_dim=768, num_layers=4, num_heads=8,
                              num_kv_heads=4, head_dim=32, max_positions=512),
    "small (~30M)": ModelConfig(vocab_size=8192, embed_dim=512, mlp_dim=1536, num_layers=6, num_heads=8,
                                num_kv_heads=4, head_dim=64, max_positions=512),
}
PROMPT_LEN, NEW_TOKENS = 32, 32


class _NoEos:
  name, vocab_size, eos_id, pad_id, bos_id = "ids", 1 << 30, -1, 0, None

  def encode(self, text):
    raise TypeError("token ids only")

  def decode(self, ids):
    return ""


def decode_flops_per_token(cfg: ModelConfig, context: int) -> float:
  attention = 4 * cfg.num_layers * cfg.num_heads * cfg.head_dim * context
  return 2 * cfg.num_params() + attention


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--quick", action="store_true")
  add_host_args(parser)
  args = parser.parse_args()
  batches = (1, 64) if args.quick else (1, 16, 64, 256)
  sizes = dict(list(SIZES.items())[:1]) if args.quick else SIZES
  peak = measured_peak_flops()
  report_host(args.host_json)
  print(f"measured matmul peak: {peak / 1e9:.1f} GFLOP/s (fp32, 2048^3 jitted matmul)")
  print(f"greedy, prompts of {PROMPT_LEN} tokens, {NEW_TOKENS} new tokens, fp32\n")
  print(f"{'model':13s} {'batch':>5s} {'ours tok/s':>11s} {'torch tok/s':>12s} {'ratio':>7s} "
        f"{'% peak':>7s} {'KV cache':>10s}")
  for name, cfg in sizes.items():
    reference = torch_llama(cfg)
    reference.generation_config.eos_token_id = None
    with tempfile.TemporaryDirectory() as tmp:
      model = torch_to_ours(reference, tmp)
    engine = InferenceEngine(model, _NoEos())
    for batch in batches:
      prompts = np.random.default_rng(batch).integers(1, cfg.vocab_size, (batch, PROMPT_LEN))
      ours = timeit(lambda: engine.generate(prompts.tolist(), NEW_TOKENS), warmup=1, repeats=3)
      ids = torch.tensor(prompts)
      with torch.no_grad():
        run = lambda: reference.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=NEW_TOKENS,
                                         min_new_tokens=NEW_TOKENS, do_sample=False, pad_token_id=0)
        theirs = timeit(run, warmup=1, repeats=3 if batch < 256 else 1)
      tokens = batch * NEW_TOKENS
      flops = tokens * decode_flops_per_token(cfg, PROMPT_LEN + NEW_TOKENS // 2)
      cache = jax.eval_shape(lambda: KVCache.create(cfg, engine.buckets.batch(batch),
                                                    engine.buckets.length(PROMPT_LEN) + engine.buckets.new(NEW_TOKENS)))
      cache_bytes = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(cache))
      print(f"{name:13s} {batch:5d} {tokens / ours:11,.0f} {tokens / theirs:12,.0f} {theirs / ours:6.2f}x "
            f"{100 * flops / ours / peak:6.1f}% {cache_bytes / 2**20:8.1f}MiB", flush=True)


if __name__ == "__main__":
  main()
