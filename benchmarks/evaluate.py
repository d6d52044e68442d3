"""Multiple-choice scoring throughput: our `InferenceEngine.score` vs `transformers` PyTorch, same
weights, same requests, CPU.

  python benchmarks/evaluate.py [--host-json host.json]

A request is one (context, choice) pair, as `evaluation.mc_eval` sends them: DOCS docs with CHOICES
choices each, random token contexts and choices of mixed lengths, sorted by length and sent in chunks
of BATCH rows to both sides. Ours pads each chunk to its shape bucket (one compiled program per
bucket); PyTorch pads to the chunk's longest row and sums the choice tokens' log-softmax. Prints the
scored choices/s of both, the ratio, and the largest log-likelihood difference between the two.
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.common import add_host_args, report_host, timeit, torch_llama, torch_to_ours  # noqa: E402
from sandbox_jax.inference import InferenceEngine  # noqa: E402
from sandbox_jax.model import ByteTokenizer, ModelConfig  # noqa: E402

SIZES = {
    "tiny (~5M)": ModelConfig(vocab_size=8192, embed_dim=256, mlp_dim=768, num_layers=4, num_heads=8,
                              num_kv_heads=4, head_dim=32, max_positions=1024),
    "small (~40M)": ModelConfig(vocab_size=16384, embed_dim=512, mlp_dim=1536, num_layers=8, num_heads=8,
                                num_kv_heads=4, head_dim=64, max_positions=1024),
}
DOCS, CHOICES, BATCH = 32, 4, 64
CONTEXT_TOKENS, CHOICE_TOKENS = (32, 112), (2, 16)
BOS = ByteTokenizer.bos_id


def requests(vocab: int, seed: int = 0) -> list[tuple[list[int], list[int]]]:
  """(context ids, choice ids) pairs, each doc's context shared by its choices, longest first."""
  rng = np.random.default_rng(seed)
  pairs = []
  for _ in range(DOCS):
    context = rng.integers(0, 256, rng.integers(*CONTEXT_TOKENS)).tolist()
    for _ in range(CHOICES):
      pairs.append((context, rng.integers(0, vocab, rng.integers(*CHOICE_TOKENS)).tolist()))
  return sorted(pairs, key=lambda p: -(len(p[0]) + len(p[1])))


def chunks(pairs):
  return [pairs[i:i + BATCH] for i in range(0, len(pairs), BATCH)]


def ours(engine, pairs) -> np.ndarray:
  out = []
  for chunk in chunks(pairs):
    out += [r.logprob for r in engine.score([c for c, _ in chunk], [x for _, x in chunk])]
  return np.asarray(out)


@torch.no_grad()
def theirs(model, pairs) -> np.ndarray:
  out = []
  for chunk in chunks(pairs):
    rows = [[BOS] + c + x for c, x in chunk]
    width = max(len(r) for r in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
      ids[i, :len(r)] = torch.tensor(r)
      mask[i, :len(r)] = 1
    logprobs = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
    for i, (c, x) in enumerate(chunk):
      start = 1 + len(c)
      positions = torch.arange(start - 1, start - 1 + len(x))
      out.append(float(logprobs[i, positions, torch.tensor(x)].sum()))
  return np.asarray(out)


def main():
  parser = argparse.ArgumentParser()
  add_host_args(parser)
  args = parser.parse_args()
  torch.set_num_threads(max(1, torch.get_num_threads()))
  report_host(args.host_json)
  print(f"multiple-choice scoring: {DOCS} docs x {CHOICES} choices, contexts {CONTEXT_TOKENS[0]}-"
        f"{CONTEXT_TOKENS[1] - 1} tokens, choices {CHOICE_TOKENS[0]}-{CHOICE_TOKENS[1] - 1} tokens, "
        f"chunks of {BATCH}, fp32\n")
  print(f"{'model':14s} {'params':>9s} {'ours choices/s':>15s} {'torch choices/s':>16s} {'ratio':>7s} "
        f"{'max |dLL|':>10s}")
  for name, cfg in SIZES.items():
    reference = torch_llama(cfg)
    with tempfile.TemporaryDirectory() as tmp:
      model = torch_to_ours(reference, tmp)
    engine = InferenceEngine(model, ByteTokenizer())
    pairs = requests(cfg.vocab_size)
    diff = float(np.max(np.abs(ours(engine, pairs) - theirs(reference, pairs))))
    t_ours = timeit(lambda: ours(engine, pairs), warmup=1, repeats=3)
    t_theirs = timeit(lambda: theirs(reference, pairs), warmup=1, repeats=3)
    n = len(pairs)
    print(f"{name:14s} {cfg.num_params() / 1e6:8.1f}M {n / t_ours:15,.0f} {n / t_theirs:16,.0f} "
          f"{t_theirs / t_ours:6.2f}x {diff:10.2e}")


if __name__ == "__main__":
  main()
