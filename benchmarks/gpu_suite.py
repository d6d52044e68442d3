"""The GPU suite: prefill, decode and a bf16 train step for two real architectures, and a society
round, each against its roofline; run by `benchmarks/gpu.sh` on one accelerator (target: < 8 min).

  python benchmarks/gpu_suite.py --out gpu_suite.json          # on a GPU (gpu.sh sets the paths)
  python benchmarks/gpu_suite.py --smoke --out smoke.json      # tiny sizes, any backend (the CPU here)

Architectures (random weights, `create_model` from a ModelConfig; real checkpoints do not travel to
the accelerator machine): SmolLM2-135M (30 layers, d 576, 9 heads / 3 KV heads, MLP 1536, vocab
49,152, tied embeddings, rope theta 100,000) and Llama-3.2-1B (16 layers, d 2048, 32 / 8 heads,
MLP 8192, vocab 128,256, tied, Llama-3 rope scaling). `--smoke` swaps in tiny models of the same
shape family and tiny sizes, so the whole suite runs in seconds on a CPU (tests/test_gpu_suite_smoke.py).

Sections, each timed after a warm-up call that compiles (compiles are excluded), medians of
`--repeats` calls, every call blocked with `jax.block_until_ready`:
1. prefill: `inference.generate.prefill` (the forward that fills a KV cache, last-token logits) of
   B rows x `prompt` tokens, bf16 weights; tokens/s and MFU (model FLOPs / s over the bf16 peak).
2. decode: `inference.generate.decode` (the real greedy decode loop) from that prefill's cache,
   compiled once with room for `decode_steps[1]` tokens and run with `stop_at` = each of
   `decode_steps`, alternately; the per-step time is the difference of the two (fastest of the
   repeats of each) over the steps between them, so the loop's fixed costs (the cache copy into the
   loop, the first sampling) cancel. Roofline: bytes
   per step (every weight + the valid KV slots, `rooflines.py`) / s over the HBM bandwidth.
3. train: the trainer's jitted Stable Alignment step (`training.step.make_train_step`: forward,
   backward, clipping, AdamW; the state donated) in bf16 compute over fp32 master weights, full
   rows of `train_len` tokens, G groups x 2 responses; tokens/s and MFU.
4. society: `SocietyRound.step` (the state donated) on one 10x10 world with the 135M architecture,
   set up by `benchmarks/society.py` (byte tokenizer, compact templates, its widths); seconds per
   round and MFU of its useful model FLOPs (counted by that benchmark's `Batched.flops`).

Donation: the train step and the society round donate their state (each call replaces it); prefill
and decode read the same weights and cache on every timed call, so nothing is donated there.

Targets printed beside the figures (on an H100/H200): decode at batch 64 >= 50% of HBM bandwidth;
the 1B train step >= 40% MFU; the 100-agent round <= 10 s. The JSON (`--out`, rewritten after every
section, so a run cut short keeps what it measured) holds the host record, the ceilings, every row
and the targets; `--budget-s` skips what would start after that many seconds.
"""

import argparse
import dataclasses
import math
import shlex
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import rooflines  # noqa: E402
from benchmarks.common import host_info, host_text, timeit_alternating, write_json  # noqa: E402
from sandbox_jax.data import GroupBatch  # noqa: E402
from sandbox_jax.inference.generate import decode, prefill  # noqa: E402
from sandbox_jax.model import KVCache, ModelConfig, create_model  # noqa: E402
from sandbox_jax.training import TrainConfig, make_optimizer, make_train_step  # noqa: E402
from sandbox_jax.training.state import init_train_state, split_model, state_shardings  # noqa: E402
from sandbox_jax.training.step import split_microbatches  # noqa: E402

LLAMA3_ROPE = (("factor", 32.0), ("high_freq_factor", 4.0), ("low_freq_factor", 1.0),
               ("original_max_position_embeddings", 8192.0))
ARCHITECTURES = {
    "smollm2-135m": ModelConfig(vocab_size=49152, embed_dim=576, mlp_dim=1536, num_layers=30, num_heads=9,
                                num_kv_heads=3, head_dim=64, max_positions=8192, rope_theta=100000.0,
                                tie_embeddings=True, name="smollm2-135m-arch"),
    "llama-3.2-1b": ModelConfig(vocab_size=128256, embed_dim=2048, mlp_dim=8192, num_layers=16, num_heads=32,
                                num_kv_heads=8, head_dim=64, max_positions=131072, rope_theta=500000.0,
                                rope_scaling=LLAMA3_ROPE, tie_embeddings=True, name="llama-3.2-1b-arch"),
}
SMOKE_ARCHITECTURES = {  # the same families at toy size (vocab > 384 so the society's byte ids fit)
    "smollm2-135m": ModelConfig(vocab_size=512, embed_dim=48, mlp_dim=128, num_layers=2, num_heads=3,
                                num_kv_heads=1, head_dim=16, max_positions=1024, rope_theta=100000.0,
                                tie_embeddings=True, name="smollm2-135m-smoke"),
    "llama-3.2-1b": ModelConfig(vocab_size=640, embed_dim=64, mlp_dim=256, num_layers=2, num_heads=4,
                                num_kv_heads=1, head_dim=16, max_positions=1024, rope_theta=500000.0,
                                rope_scaling=LLAMA3_ROPE, tie_embeddings=True, name="llama-3.2-1b-smoke"),
}


@dataclasses.dataclass(frozen=True)
class Sizes:
  batches: tuple[int, ...] = (1, 16, 64, 256)
  prompt: int = 512                       # prefill length = the decode's starting context
  decode_steps: tuple[int, int] = (16, 80)
  train_len: int = 1024
  # x 2 responses x train_len tokens: 16k / 8k tokens a step. XLA's CPU plan of the compiled steps
  # (`memory_analysis`) needs 37 / 52 GiB of temporaries besides the 1.5 / 13.8 GiB state at these
  # sizes (74 / 95 GiB at twice the batch), so they fit an 80 GB card.
  train_groups: tuple[tuple[str, int], ...] = (("smollm2-135m", 8), ("llama-3.2-1b", 4))
  society_grid: int = 10
  society_rounds: int = 3
  repeats: int = 5
  matmul_n: int = 8192
  copy_bytes: int = 2 << 30


SMOKE = Sizes(batches=(1, 4), prompt=32, decode_steps=(4, 132), train_len=64,
              train_groups=(("smollm2-135m", 2), ("llama-3.2-1b", 2)), society_grid=3, society_rounds=1, repeats=3,
              matmul_n=512, copy_bytes=64 << 20)
TARGETS = {"decode_hbm_at_64": 0.5, "train_mfu_1b": 0.4, "society_round_s": 10.0}
BF16 = dict(dtype="bfloat16", param_dtype="bfloat16")
MIXED = dict(dtype="bfloat16", param_dtype="float32")   # training: bf16 compute, fp32 master weights


def _median(fn, repeats: int) -> float:
  fn()  # compile
  return float(np.median(timeit_alternating({"f": fn}, warmup=0, repeats=repeats)["f"]))


# -- 1 + 2. prefill and decode ----------------------------------------------------------------------
def inference_rows(name: str, cfg: ModelConfig, sizes: Sizes, ceilings: dict, batches) -> tuple[list, list]:
  bf16_cfg = cfg.replace(**BF16)
  model = create_model(bf16_cfg, seed=0)
  itemsize = bf16_cfg.weight_dtype.itemsize   # weights and the KV cache (compute dtype) are both bf16
  short, long = sizes.decode_steps
  p = sizes.prompt
  prefill_fn = jax.jit(prefill)
  to_cache = jax.jit(lambda k, v, valid: KVCache.from_prefill(k, v, valid, p + long))
  decode_fn = jax.jit(lambda m, cache, logits, keys, temps, stop_at: decode(
      m, cache, logits, keys, temps, max_new_tokens=long, eos_id=-1, pad_id=0, stop_at=stop_at))
  pre_rows, dec_rows = [], []
  for b in batches:
    tokens = jax.random.randint(jax.random.key(b), (b, p), 1, cfg.vocab_size, jnp.int32)
    valid = jnp.ones((b, p), bool)
    seconds = _median(lambda: jax.block_until_ready(prefill_fn(model, tokens, valid)), sizes.repeats)
    flops = rooflines.forward_flops(cfg, b, p, 1)
    pre_rows.append(dict(model=name, batch=b, prompt_tokens=p, seconds=seconds, tokens_per_s=b * p / seconds,
                         model_flops=flops, roofline_kind="mfu",
                         roofline_fraction=flops / seconds / ceilings["bf16_flops"]))
    print(_fmt_row("prefill", pre_rows[-1]), flush=True)

    logits, k, v = prefill_fn(model, tokens, valid)
    cache = jax.block_until_ready(to_cache(k, v, valid))
    del k, v
    keys, temps = jax.random.split(jax.random.key(0), b), jnp.zeros((b,), jnp.float32)
    runs = {n: (lambda n=n: jax.block_until_ready(decode_fn(model, cache, logits, keys, temps, jnp.int32(n))))
            for n in (short, long)}
    for run in runs.values():
      run()  # compile (one program: stop_at is traced) and warm up
    times = timeit_alternating(runs, warmup=0, repeats=sizes.repeats)
    # the fastest call of each: load spikes on a shared host only ever add time
    per_step = (min(times[long]) - min(times[short])) / (long - short)
    context = p + (short + long + 1) / 2     # mean valid slots a step reads, steps short .. long-1
    step_bytes = rooflines.weight_bytes(cfg, itemsize) + rooflines.kv_bytes(cfg, b, context, itemsize)
    dec_rows.append(dict(model=name, batch=b, context=context, steps_timed=long - short, seconds_per_step=per_step,
                         tokens_per_s=b / per_step, bytes_per_step=step_bytes,
                         seconds_short=float(np.median(times[short])), seconds_long=float(np.median(times[long])),
                         roofline_kind="hbm", roofline_fraction=step_bytes / per_step / ceilings["hbm_bytes_s"]))
    print(_fmt_row("decode", dec_rows[-1]), flush=True)
    del cache, logits
  return pre_rows, dec_rows


# -- 3. train step ----------------------------------------------------------------------------------
def full_row_batch(cfg: ModelConfig, groups: int, length: int, seed: int = 0) -> GroupBatch:
  """G groups x 2 responses of `length` real tokens; the first quarter is prompt (no loss)."""
  rng = np.random.default_rng(seed)
  tokens = rng.integers(3, cfg.vocab_size, (groups, 2, length)).astype(np.int32)
  targets = np.concatenate([tokens[..., 1:], np.zeros((groups, 2, 1), np.int32)], axis=-1)
  position = np.arange(length)
  loss_mask = np.broadcast_to((position >= length // 4 - 1) & (position < length - 1), tokens.shape)
  scores = np.stack([rng.choice(np.arange(1, 8), 2, replace=False) for _ in range(groups)]).astype(np.float32)
  return GroupBatch(tokens, targets, loss_mask.astype(np.float32), np.ones(tokens.shape, bool), scores,
                    np.ones((groups, 2), bool), np.ones(groups, bool))


def train_row(name: str, cfg: ModelConfig, groups: int, length: int, ceilings: dict, repeats: int,
              logits_chunk: int) -> dict:
  train_cfg = TrainConfig(groups_per_batch=groups, max_responses=2, max_len=length, logits_chunk=logits_chunk)
  graphdef, params, rest = split_model(create_model(cfg.replace(**MIXED), seed=0))
  optimizer = make_optimizer(train_cfg)
  shardings = state_shardings(params, optimizer, None)
  holder = {"state": init_train_state(params, optimizer, shardings)}
  del params
  step = make_train_step(train_cfg, graphdef, rest, optimizer, shardings)
  batch_A = jax.device_put(split_microbatches(full_row_batch(cfg, groups, length), 1), shardings.step)
  lr, losses = np.float32(train_cfg.lr), []

  def run():
    holder["state"], metrics = step(holder["state"], batch_A, None, lr)
    losses.append(float(jax.block_until_ready(metrics)["loss"]))

  seconds = _median(run, repeats)
  rows = 2 * groups
  flops = rooflines.train_flops(cfg, rows, length)
  row = dict(model=name, rows=rows, length=length, tokens=rows * length, seconds=seconds,
             tokens_per_s=rows * length / seconds, model_flops=flops, loss_first=losses[0], loss_last=losses[-1],
             roofline_kind="mfu", roofline_fraction=flops / seconds / ceilings["bf16_flops"])
  print(_fmt_row("train", row), flush=True)
  del holder
  return row


# -- 4. society round -------------------------------------------------------------------------------
def society_result(cfg: ModelConfig, sizes: Sizes, ceilings: dict, chunk_rows: int) -> dict:
  """The 135M architecture's round through benchmarks/society.py's set-up (`society_config`,
  `check_widths`, `Batched`: it calls only `SocietyRound.step`) and its FLOP count."""
  from benchmarks import society
  from sandbox_jax.model import ByteTokenizer

  tokenizer = ByteTokenizer()
  soc_cfg = dataclasses.replace(society.society_config(sizes.society_grid), chunk_rows=chunk_rows)
  society.check_widths(soc_cfg, tokenizer)
  with tempfile.TemporaryDirectory() as tmp:
    batched = society.Batched(soc_cfg, create_model(cfg.replace(**BF16), seed=society.SEED), tokenizer, tmp)
    first = batched.run()[1]
    times = [batched.run()[1] for _ in range(sizes.society_rounds)]
    useful, executed, _ = batched.flops()
  seconds = float(np.median(times))
  agents = soc_cfg.num_agents
  result = dict(model=cfg.name, agents=agents, chunk_rows=chunk_rows, compile_and_first_s=first, seconds=seconds,
                round_times=times, interactions_per_s=agents / seconds, useful_flops=sum(useful.values()),
                executed_flops=sum(executed.values()), roofline_kind="mfu",
                roofline_fraction=sum(useful.values()) / seconds / ceilings["bf16_flops"])
  print(_fmt_row("society", result), flush=True)
  return result


# -- output -----------------------------------------------------------------------------------------
def row_target(section: str, row: dict) -> dict | None:
  """The issue's target this row is measured against, if any, and whether it is met."""
  if section == "decode" and row["batch"] == 64:
    goal = TARGETS["decode_hbm_at_64"]
    return dict(name=f"decode {row['model']} batch 64: HBM fraction", value=row["roofline_fraction"],
                target=f">= {goal:.0%}", met=row["roofline_fraction"] >= goal)
  if section == "train" and row["model"] == "llama-3.2-1b":
    goal = TARGETS["train_mfu_1b"]
    return dict(name="train llama-3.2-1b: MFU", value=row["roofline_fraction"], target=f">= {goal:.0%}",
                met=row["roofline_fraction"] >= goal)
  if section == "society":
    goal = TARGETS["society_round_s"]
    return dict(name=f"society round, {row['agents']} agents: seconds", value=row["seconds"],
                target=f"<= {goal:g} s (100 agents)", met=row["agents"] >= 100 and row["seconds"] <= goal)
  return None


def targets(report: dict) -> list[dict]:
  rows = [(s, r) for s in ("decode", "train") for r in report[s]]
  rows += [("society", report["society"])] if report["society"] else []
  return [t for t in (row_target(s, r) for s, r in rows) if t]


def _fmt_row(section: str, row: dict) -> str:
  kind = "MFU" if row["roofline_kind"] == "mfu" else "HBM"
  what = {"prefill": lambda r: f"batch {r['batch']:4d} x {r['prompt_tokens']} tok  {r['seconds'] * 1e3:9.2f} ms",
          "decode": lambda r: (f"batch {r['batch']:4d} ctx {r['context']:.0f}  "
                               f"{r['seconds_per_step'] * 1e3:9.3f} ms/step"),
          "train": lambda r: f"{r['rows']} rows x {r['length']} tok  {r['seconds'] * 1e3:9.1f} ms/step",
          "society": lambda r: f"{r['agents']} agents  {r['seconds']:9.3f} s/round"}[section](row)
  target = row_target(section, row)
  note = f"  target {target['target']}: {'met' if target['met'] else 'NOT met'}" if target else ""
  return (f"{section:8s} {row['model']:18s} {what:42s} "
          f"{row.get('tokens_per_s', row.get('interactions_per_s')):>12,.0f} "
          f"{'tok/s' if section != 'society' else 'inter/s':7s} {kind} {row['roofline_fraction']:6.1%}{note}")


def print_summary(report: dict):
  c = report["ceilings"]
  m = c["measured"]
  print(f"\nceilings: bf16 {c['bf16_flops'] / 1e12:.3g} TFLOP/s ({c['bf16_flops_source']}), memory "
        f"{c['hbm_bytes_s'] / 1e12:.3g} TB/s ({c['hbm_bytes_s_source']}); measured here: matmul "
        f"{m['bf16_flops'] / 1e12:.3g} TFLOP/s ({m['matmul_n']}^3 bf16), in-place pass "
        f"{m['hbm_bytes_s'] / 1e12:.3g} TB/s ({m['copy_bytes'] >> 20} MiB)")
  print(f"{'section':8s} {'model':18s} {'shape / time':42s} {'throughput':>12s} {'':7s} roofline")
  for section in ("prefill", "decode", "train"):
    for row in report[section]:
      print(_fmt_row(section, row))
  if report["society"]:
    print(_fmt_row("society", report["society"]))
  print("targets" + (" (smoke sizes: not meaningful)" if report["smoke"] else "") + ":")
  for t in report["targets"]:
    value = f"{t['value']:.3f} s" if t["name"].endswith("seconds") else f"{t['value']:.1%}"
    print(f"  {t['name']:48s} {value:>9s}  target {t['target']:22s} {'met' if t['met'] else 'NOT met'}")
  if report["skipped"]:
    print(f"skipped (over --budget-s {report['budget_s']:g}): {', '.join(report['skipped'])}")
  print(f"total {report['total_seconds']:.0f} s")


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--smoke", action="store_true", help="tiny models and sizes (any backend; the test)")
  parser.add_argument("--out", default="gpu_suite.json", help="JSON report path (written atomically)")
  parser.add_argument("--sections", default="prefill,train,society",
                      help="comma list of prefill (prefill + decode), train, society")
  parser.add_argument("--models", default=",".join(ARCHITECTURES), help="comma list of " + ", ".join(ARCHITECTURES))
  parser.add_argument("--batches", help="comma list of prefill/decode batch sizes (default 1,16,64,256)")
  parser.add_argument("--repeats", type=int, help="timed calls per measurement (default 5)")
  parser.add_argument("--train-groups", type=int, help="groups per train step for every model (x 2 responses)")
  parser.add_argument("--train-len", type=int, help="tokens per train row (default 1024)")
  parser.add_argument("--logits-chunk", type=int, default=0, help="train.logits_chunk (0: all logits at once)")
  parser.add_argument("--society-chunk-rows", type=int, default=0,
                      help="society.chunk_rows for the round (0: every row in one pass, the accelerator setting)")
  parser.add_argument("--peak-tflops", type=float,
                      help="bf16 dense peak in TFLOP/s (default: the card's table entry)")
  parser.add_argument("--hbm-tbps", type=float, help="memory bandwidth in TB/s (default: the card's table entry)")
  parser.add_argument("--budget-s", type=float, default=450.0, help="skip any item that would start after this")
  return parser.parse_args(argv)


def run(argv=None) -> dict:
  """Runs the suite; returns the report it also writes to --out."""
  args = parse_args(argv)
  start = time.perf_counter()
  sizes = SMOKE if args.smoke else Sizes()
  overrides = {k: v for k, v in dict(repeats=args.repeats, train_len=args.train_len).items() if v}
  if args.batches:
    overrides["batches"] = tuple(int(b) for b in args.batches.split(","))
  if args.train_groups:
    overrides["train_groups"] = tuple((n, args.train_groups) for n, _ in sizes.train_groups)
  sizes = dataclasses.replace(sizes, **overrides)
  archs = SMOKE_ARCHITECTURES if args.smoke else ARCHITECTURES
  models = args.models.split(",")
  unknown = sorted(set(models) - set(archs))
  if unknown:
    raise SystemExit(f"--models: unknown {unknown}; known: {sorted(archs)}")
  sections = args.sections.split(",")
  if set(sections) - {"prefill", "train", "society"}:
    raise SystemExit(f"--sections: unknown {sorted(set(sections) - {'prefill', 'train', 'society'})}")

  host = host_info()
  print(f"command: {' '.join(shlex.quote(a) for a in [sys.argv[0]] + (sys.argv[1:] if argv is None else argv))}")
  print(host_text(host), flush=True)
  measured = rooflines.measure_ceilings(sizes.matmul_n, sizes.copy_bytes)
  ceilings = rooflines.resolve_ceilings(jax.devices()[0].device_kind, measured, args.peak_tflops, args.hbm_tbps)
  report = dict(suite="gpu_suite", smoke=args.smoke, command=sys.argv if argv is None else ["gpu_suite.py", *argv],
                host=host, ceilings=ceilings, sizes=dataclasses.asdict(sizes),
                models={n: dict(dataclasses.asdict(archs[n]), params=archs[n].num_params()) for n in models},
                prefill=[], decode=[], train=[], society=None, targets=[], skipped=[], budget_s=args.budget_s,
                section_seconds={}, total_seconds=0.0)

  def save():
    report["targets"] = targets(report)
    report["total_seconds"] = time.perf_counter() - start
    write_json(args.out, report)

  def item(label: str, fn):
    if time.perf_counter() - start > args.budget_s:
      report["skipped"].append(label)
      print(f"skipped {label}: over --budget-s {args.budget_s:g}", flush=True)
      return
    t0 = time.perf_counter()
    fn()
    report["section_seconds"][label] = time.perf_counter() - t0
    save()

  def inference(name):
    pre, dec = inference_rows(name, archs[name], sizes, ceilings, sizes.batches)
    report["prefill"] += pre
    report["decode"] += dec

  def train(name):
    report["train"].append(train_row(name, archs[name], dict(sizes.train_groups)[name], sizes.train_len, ceilings,
                                     sizes.repeats, args.logits_chunk))

  def society():
    report["society"] = society_result(archs["smollm2-135m"], sizes, ceilings, args.society_chunk_rows)

  # The items with a target first, so a run over its budget loses the others: inference, the 1B
  # train step, the society round, then the remaining train steps.
  order = [(f"prefill+decode {n}", lambda n=n: inference(n)) for n in models if "prefill" in sections]
  if "train" in sections and "llama-3.2-1b" in models:
    order.append(("train llama-3.2-1b", lambda: train("llama-3.2-1b")))
  if "society" in sections:
    order.append(("society", society))
  order += [(f"train {n}", lambda n=n: train(n)) for n in models if "train" in sections and n != "llama-3.2-1b"]
  save()
  for label, fn in order:
    item(label, fn)
  save()
  print_summary(report)
  bad = [r for s in ("prefill", "decode", "train") for r in report[s] if not math.isfinite(r["roofline_fraction"])]
  if bad:
    print(f"WARNING: non-finite roofline fractions in {len(bad)} rows", flush=True)
  return report


if __name__ == "__main__":
  run()
