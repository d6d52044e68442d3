"""Forward-pass tokens/s: our Flax model vs `transformers` PyTorch, same weights, same inputs, CPU.

  python benchmarks/forward.py [--host-json host.json]

Prints one row per model size with both throughputs and the ratio.
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.common import add_host_args, report_host, timeit, torch_llama, torch_to_ours  # noqa: E402
from sandbox_jax.model import ModelConfig  # noqa: E402

SIZES = {
    "tiny (~5M)": ModelConfig(vocab_size=8192, embed_dim=256, mlp_dim=768, num_layers=4, num_heads=8,
                              num_kv_heads=4, head_dim=32, max_positions=1024),
    "small (~40M)": ModelConfig(vocab_size=16384, embed_dim=512, mlp_dim=1536, num_layers=8, num_heads=8,
                                num_kv_heads=4, head_dim=64, max_positions=1024),
}
BATCH, LENGTH = 8, 256


def main():
  parser = argparse.ArgumentParser()
  add_host_args(parser)
  args = parser.parse_args()
  torch.set_num_threads(max(1, torch.get_num_threads()))
  report_host(args.host_json)
  print(f"forward pass, batch {BATCH} x {LENGTH} tokens, fp32\n")
  print(f"{'model':14s} {'params':>9s} {'ours tok/s':>12s} {'torch tok/s':>12s} {'ratio':>7s}")
  for name, cfg in SIZES.items():
    reference = torch_llama(cfg)
    with tempfile.TemporaryDirectory() as tmp:
      model = torch_to_ours(reference, tmp)
    tokens = np.random.default_rng(0).integers(0, cfg.vocab_size, (BATCH, LENGTH))
    forward = jax.jit(lambda m, t: m(t).logits_BxLxV)
    ours_in = jnp.asarray(tokens)
    ours = timeit(lambda: forward(model, ours_in).block_until_ready())
    torch_in = torch.tensor(tokens)
    with torch.no_grad():
      theirs = timeit(lambda: reference(torch_in).logits)
    n = BATCH * LENGTH
    print(f"{name:14s} {cfg.num_params() / 1e6:8.1f}M {n / ours:12,.0f} {n / theirs:12,.0f} {theirs / ours:6.2f}x")


if __name__ == "__main__":
  main()
