"""Stable Alignment training throughput: our jitted step vs PyTorch + `transformers`, CPU, fp32.

  python benchmarks/train.py              # tiny (~5M) and small (~30M); memory on 1/2/4/8 devices
  python benchmarks/train.py --quick      # tiny only, memory on 1 and 8 devices

Steps are timed alternately (ours, torch, ours, ...; `--repeats` each), so both see the same load on
a shared machine; the table gives medians, the line below it each side's range and the ratios of
the alternating pairs.

Both sides train the same weights on the same batch — G groups × R responses × T tokens, prompts
masked, the Stable Alignment loss (margin 1, ratio 0.2, mean aggregation) — and each timed step is
a whole optimizer step: forward, backward, global-norm clipping at 1.0 and AdamW. Ours is the
trainer's own jitted step (`training.step.make_train_step`, state donated); PyTorch's is
`LlamaForCausalLM` + the same loss written in torch + `torch.optim.AdamW`. The first step's
losses are compared to show both compute the same thing.

Also printed: model-FLOPs utilisation against the machine's measured matmul peak (6 FLOPs per
parameter per token for forward + backward, plus attention), and the per-device memory of the
compiled step (`compiled.memory_analysis()`) with the small model FSDP-sharded over 1, 2, 4 and 8
fake CPU devices.
"""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from flax import nnx  # noqa: E402
from jax.sharding import NamedSharding, PartitionSpec  # noqa: E402

from benchmarks.common import (add_host_args, measured_peak_flops, report_host, timeit_alternating,  # noqa: E402
                               torch_llama, torch_to_ours)
from sandbox_jax.data import GroupBatch  # noqa: E402
from sandbox_jax.model import ModelConfig, abstract_model, model_shardings  # noqa: E402
from sandbox_jax.parallel import make_mesh  # noqa: E402
from sandbox_jax.training import TrainConfig, make_optimizer, make_train_step  # noqa: E402
from sandbox_jax.training.state import (abstract_train_state, init_train_state, split_model,  # noqa: E402
                                        state_shardings)
from sandbox_jax.training.step import split_microbatches  # noqa: E402

SIZES = {
    "tiny (~5M)": ModelConfig(vocab_size=4096, embed_dim=256, mlp_dim=768, num_layers=4, num_heads=8,
                              num_kv_heads=4, head_dim=32, max_positions=512),
    "small (~30M)": ModelConfig(vocab_size=8192, embed_dim=512, mlp_dim=1536, num_layers=6, num_heads=8,
                                num_kv_heads=4, head_dim=64, max_positions=512),
}
GROUPS, RESPONSES, LENGTH = 4, 2, 256
CFG = TrainConfig(lr=2e-5, groups_per_batch=GROUPS, max_responses=RESPONSES, max_len=LENGTH)


def synthetic_batch(cfg: ModelConfig, groups: int, seed: int = 0) -> GroupBatch:
  """Right-padded rows: a prompt of T/3 tokens, a response of T/4..2T/3 tokens, scores 1..7."""
  rng = np.random.default_rng(seed)
  g, r, t = groups, RESPONSES, LENGTH
  tokens = rng.integers(3, cfg.vocab_size, (g, r, t)).astype(np.int32)
  prompt = t // 3
  lengths = prompt + rng.integers(t // 4, 2 * t // 3, (g, r))
  position = np.arange(t)
  input_mask = position < lengths[..., None]
  tokens = np.where(input_mask, tokens, 0).astype(np.int32)
  targets = np.concatenate([tokens[..., 1:], np.zeros((g, r, 1), np.int32)], axis=-1)
  loss_mask = ((position >= prompt - 1) & (position < lengths[..., None] - 1)).astype(np.float32)
  scores = np.stack([rng.permutation(np.arange(1, 8))[:r] for _ in range(g)]).astype(np.float32)
  return GroupBatch(tokens, targets, loss_mask, input_mask, scores, np.ones((g, r), bool), np.ones(g, bool))


def train_flops(cfg: ModelConfig, tokens: int) -> float:
  """Forward + backward model FLOPs: 6 per weight per token (the lm head included, the embedding
  lookup not) plus attention's two T×T matmuls per head (full, not causal-halved)."""
  lookup = 0 if cfg.tie_embeddings else cfg.vocab_size * cfg.embed_dim
  weights = cfg.num_params() - lookup
  attention = 4 * cfg.num_layers * cfg.num_heads * cfg.head_dim * LENGTH
  return 3 * tokens * (2 * weights + attention)


# ----------------------------------------------------------------------------------------------
# Ours.

def ours_step(model, batch: GroupBatch, mesh=None, cfg: TrainConfig = CFG):
  """run() -> loss: one timed optimizer step; with a mesh, the batch's groups are sharded over 'fsdp'."""
  graphdef, params, rest = split_model(model)
  optimizer = make_optimizer(cfg)
  shardings = state_shardings(params, optimizer, mesh)
  state = init_train_state(params, optimizer, shardings)
  step = make_train_step(cfg, graphdef, rest, optimizer, shardings)
  batch_sharding = shardings.step if mesh is None else NamedSharding(mesh, PartitionSpec(None, "fsdp"))
  batch_A = jax.device_put(split_microbatches(batch, 1), batch_sharding)
  holder = {"state": state}
  lr = np.float32(cfg.lr)

  def run():
    holder["state"], metrics = step(holder["state"], batch_A, None, lr)
    jax.block_until_ready((holder["state"], metrics))
    return float(metrics["loss"])

  return run


# ----------------------------------------------------------------------------------------------
# PyTorch.

def torch_stable_alignment(logits, batch_t, margin=1.0, ratio=0.2, scale=7.0):
  g, r = batch_t["scores"].shape
  logp = torch.log_softmax(logits, -1).gather(-1, batch_t["targets"][..., None])[..., 0]
  mask = batch_t["loss_mask"]
  logp_sum = (logp * mask).sum(-1).view(g, r)
  count = mask.sum(-1).view(g, r)
  nll = -logp_sum / count.clamp(min=1)
  scores = batch_t["scores"]
  best = scores.argmax(-1, keepdim=True)
  s_best, nll_best = scores.gather(-1, best), nll.gather(-1, best)
  worse = scores < s_best
  d = nll_best - nll + (s_best - scores) / scale * margin
  agg = (d * worse).sum(-1) / worse.sum(-1).clamp(min=1)
  hinge = torch.relu(agg) * worse.any(-1)
  return (nll_best[:, 0] + ratio * hinge).mean()


def torch_step(model, batch: GroupBatch):
  g, r, t = batch.tokens_GxRxT.shape
  rows = lambda x: torch.tensor(np.asarray(x).reshape(g * r, t))
  batch_t = {"tokens": rows(batch.tokens_GxRxT), "targets": rows(batch.targets_GxRxT).long(),
             "loss_mask": rows(batch.loss_mask_GxRxT), "attention": rows(batch.input_mask_GxRxT).long(),
             "scores": torch.tensor(batch.scores_GxR)}
  model.train()
  params = [p for p in model.parameters() if p.requires_grad]
  optimizer = torch.optim.AdamW(params, lr=CFG.lr, betas=(CFG.adam_b1, CFG.adam_b2), eps=CFG.adam_eps,
                                weight_decay=0.0)

  def run():
    logits = model(input_ids=batch_t["tokens"], attention_mask=batch_t["attention"]).logits
    loss = torch_stable_alignment(logits.float(), batch_t)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, CFG.grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())

  return run


# ----------------------------------------------------------------------------------------------
# Memory of the compiled step, FSDP over n devices.

def step_memory(cfg: ModelConfig, devices: int, groups: int) -> dict[str, float]:
  mesh = make_mesh({"fsdp": devices}, devices=jax.devices()[:devices])
  model = abstract_model(cfg, mesh)
  graphdef, params, rest = split_model(model)
  params = jax.tree.map(lambda p, s: jax.ShapeDtypeStruct(p.shape, p.dtype, sharding=s), params,
                        nnx.state(model_shardings(cfg, mesh), nnx.Param))
  optimizer = make_optimizer(CFG)
  shardings = state_shardings(params, optimizer, mesh)
  state = abstract_train_state(params, optimizer, shardings)
  batch_sharding = NamedSharding(mesh, PartitionSpec(None, "fsdp") if devices > 1 else PartitionSpec())
  batch = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=batch_sharding),
                       split_microbatches(synthetic_batch(cfg, groups), 1))
  step = make_train_step(CFG, graphdef, rest, optimizer, shardings)
  stats = step.lower(state, batch, None, np.float32(CFG.lr)).compile().memory_analysis()
  mib = lambda n: n / 2**20
  return {"state": mib(stats.argument_size_in_bytes), "temp": mib(stats.temp_size_in_bytes),
          "total": mib(stats.argument_size_in_bytes + stats.output_size_in_bytes - stats.alias_size_in_bytes
                       + stats.temp_size_in_bytes)}


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--quick", action="store_true")
  parser.add_argument("--repeats", type=int, default=9, help="timed steps per side (alternating)")
  add_host_args(parser)
  args = parser.parse_args()
  sizes = dict(list(SIZES.items())[:1]) if args.quick else SIZES
  peak = measured_peak_flops()
  tokens = GROUPS * RESPONSES * LENGTH
  report_host(args.host_json)
  print(f"measured matmul peak: {peak / 1e9:.1f} GFLOP/s (fp32, 2048^3 jitted matmul)")
  print(f"one AdamW step of Stable Alignment on {GROUPS} groups x {RESPONSES} responses x {LENGTH} tokens "
        f"({tokens} tokens), fp32, clipping 1.0\n")
  print(f"{'model':13s} {'params':>7s} {'ours ms':>8s} {'torch ms':>9s} {'ours tok/s':>11s} {'torch tok/s':>12s} "
        f"{'ratio':>6s} {'MFU':>6s} {'loss ours / torch':>20s}")
  spread = {}
  for name, cfg in sizes.items():
    reference = torch_llama(cfg)
    with tempfile.TemporaryDirectory() as tmp:
      model = torch_to_ours(reference, tmp)
    batch = synthetic_batch(cfg, GROUPS)
    ours, theirs = ours_step(model, batch), torch_step(reference, batch)
    first = (ours(), theirs())
    times = timeit_alternating({"ours": ours, "torch": theirs}, repeats=args.repeats)
    ours_s, theirs_s = np.median(times["ours"]), np.median(times["torch"])
    mfu = train_flops(cfg, tokens) / ours_s / peak
    print(f"{name:13s} {cfg.num_params() / 1e6:6.1f}M {ours_s * 1e3:8.1f} {theirs_s * 1e3:9.1f} "
          f"{tokens / ours_s:11,.0f} {tokens / theirs_s:12,.0f} {theirs_s / ours_s:5.2f}x {mfu:6.1%} "
          f"{first[0]:9.5f} / {first[1]:.5f}")
    pairs = np.asarray(times["torch"]) / np.asarray(times["ours"])
    spread[name] = (times, pairs)
  print(f"\n(median of {args.repeats} steps each, ours and torch alternating; ms [min-max], and the ratio of "
        f"each alternating pair)")
  for name, (times, pairs) in spread.items():
    span = lambda ts: f"[{min(ts) * 1e3:.1f}-{max(ts) * 1e3:.1f}]"
    print(f"{name:13s} ours {span(times['ours'])}  torch {span(times['torch'])}  pair ratios "
          f"median {np.median(pairs):.2f}x [{pairs.min():.2f}-{pairs.max():.2f}]")

  cfg = SIZES["small (~30M)"]
  counts = (1, 8) if args.quick else (1, 2, 4, 8)
  print(f"\nper-device memory of the compiled step, small model, FSDP, batch of {8} groups (MiB):")
  print(f"{'devices':>7s} {'state':>8s} {'temp':>8s} {'total':>8s} {'total x n':>10s}")
  for n in counts:
    m = step_memory(cfg, n, 8)
    print(f"{n:7d} {m['state']:8.1f} {m['temp']:8.1f} {m['total']:8.1f} {m['total'] * n:10.1f}")


if __name__ == "__main__":
  main()
