"""Scale-out throughput on one machine: society worlds and train-step devices (DESIGN.md §10).

  python benchmarks/scale.py              # society 1, 4, 16 worlds x 100 agents; train step on 1, 2, 4, 8 devices
  python benchmarks/scale.py --quick      # society 1 and 4 worlds; train step on 1 and 8 devices

1. Society: the batched round (`SocietyRound.step`) on W independent 10x10 worlds (views cycling
   half_half, mixed_half_half, all_good, all_bad), the tiny benchmark model and widths of
   `benchmarks/society.py`, each size in its own process; agent-interactions/s and model FLOPs/s
   against the measured matmul peak (useful FLOPs of the 100-agent round scaled by W).
2. Train step: the trainer's jitted Stable Alignment step (`benchmarks/train.py`, tiny model) with the
   same global batch (8 groups x 2 responses x 256 tokens) on n fake CPU devices, mesh fsdp=n, batch
   sharded over the groups; tokens/s and model-FLOPs utilisation against the measured peak.

On a CPU the fake devices share the same cores, so more devices cannot add compute: this measures
what sharding costs (collectives, smaller per-device matmuls), not speed-up. On a GPU/TPU host, run
the same script there (`jax.devices()` are the real chips) for the accelerator figures.
"""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import society, train  # noqa: E402
from benchmarks.common import add_host_args, measured_peak_flops, report_host, timeit  # noqa: E402
from sandbox_jax.model import create_model  # noqa: E402
from sandbox_jax.parallel import make_mesh  # noqa: E402

TRAIN_GROUPS = 8


def society_worlds(worlds_list, rounds: int, peak: float):
  print("== society: batched round on W worlds of 10x10 agents, each size in its own process")
  print(f"{'worlds':>6s} {'agents':>6s} {'compile+1st':>11s} {'round: median [min-max]':>31s} {'inter/s':>8s} "
        f"{'ms/agent':>8s} {'GFLOP/s':>8s} {'% peak':>7s}")
  per_world_flops = None
  for worlds in worlds_list:
    point = society.run_child(10, worlds, rounds, timeout=3600)
    if "error" in point:
      print(f"{worlds:6d} {100 * worlds:6d}  failed: {point['error']}")
      continue
    if per_world_flops is None:  # useful model FLOPs of one 100-agent world's round
      per_world_flops = one_world_useful_flops()
    t = float(np.median(point["times"]))
    flops = per_world_flops * worlds / t
    print(f"{worlds:6d} {point['agents']:6d} {point['first_s']:10.1f}s {society.fmt_times(point['times']):>31s} "
          f"{point['agents'] / t:8.1f} {1e3 * t / point['agents']:8.1f} {flops / 1e9:8.2f} {flops / peak:7.1%}")


def one_world_useful_flops() -> float:
  import tempfile

  from sandbox_jax.model import ByteTokenizer

  with tempfile.TemporaryDirectory() as tmp:
    b = society.Batched(society.society_config(10), create_model(society.MODEL, seed=society.SEED), ByteTokenizer(),
                        tmp)
    useful, _, _ = b.flops()
  return sum(useful.values())


def train_devices(counts, peak: float):
  cfg = train.SIZES["tiny (~5M)"]
  batch = train.synthetic_batch(cfg, TRAIN_GROUPS)
  tokens = TRAIN_GROUPS * train.RESPONSES * train.LENGTH
  flops = train.train_flops(cfg, tokens)
  step_cfg = dataclasses.replace(train.CFG, groups_per_batch=TRAIN_GROUPS)
  print(f"\n== train step: tiny model ({cfg.num_params() / 1e6:.1f}M), {TRAIN_GROUPS} groups x {train.RESPONSES} "
        f"x {train.LENGTH} tokens = {tokens} tokens per step, mesh fsdp=n (batch over the groups)")
  print(f"{'devices':>7s} {'step ms':>8s} {'tokens/s':>9s} {'MFU':>6s} {'loss':>9s}")
  for n in counts:
    mesh = make_mesh({"fsdp": n}, devices=jax.devices()[:n])
    run = train.ours_step(create_model(cfg, seed=0, mesh=mesh), batch, mesh, step_cfg)
    first_loss = run()
    seconds = timeit(run, warmup=1, repeats=5)
    print(f"{n:7d} {seconds * 1e3:8.1f} {tokens / seconds:9,.0f} {flops / seconds / peak:6.1%} {first_loss:9.5f}")


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--quick", action="store_true")
  add_host_args(parser)
  args = parser.parse_args()
  report_host(args.host_json)
  peak = measured_peak_flops()
  print(f"{len(jax.devices())} devices; measured matmul peak {peak / 1e9:.1f} GFLOP/s (fp32, 2048^3 jitted matmul)\n")
  society_worlds((1, 4) if args.quick else (1, 4, 16), 2, peak)
  train_devices((1, 8) if args.quick else (1, 2, 4, 8), peak)


if __name__ == "__main__":
  main()
