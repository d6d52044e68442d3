"""One process of tests/test_multiprocess.py (not a test module): on a mesh over every process's
devices, a 2-step train run (checkpoints, HF export), the same run again (which only restores its
checkpoint), one society round, and the pipeline's stage bookkeeping; process 0 writes the results
to --out (parameters, metrics, transcript).

  python -m tests.multiprocess_worker --out=DIR --workdir=DIR --devices=2 \
      [--num_processes=2 --process_id=I --port=P]

With --num_processes=1 it is the single-process reference (same global device count, same mesh).
"""

import argparse
import json
import os
import sys
import time


def _args():
  parser = argparse.ArgumentParser()
  parser.add_argument("--out", required=True)
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--devices", type=int, required=True, help="local (fake CPU) devices of this process")
  parser.add_argument("--num_processes", type=int, default=1)
  parser.add_argument("--process_id", type=int, default=0)
  parser.add_argument("--port", type=int, default=0)
  return parser.parse_args()


ARGS = _args()
# Less LLVM optimisation compiles about a third faster; the single-process reference uses the same flags.
os.environ["XLA_FLAGS"] = (f"--xla_force_host_platform_device_count={ARGS.devices} "
                           "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true")
os.environ["JAX_PLATFORMS"] = "cpu"

import dataclasses  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402

T0 = time.perf_counter()


def log(message):
  print(f"[worker {ARGS.process_id}/{ARGS.num_processes} {time.perf_counter() - T0:6.1f}s] {message}",
        file=sys.stderr, flush=True)


if ARGS.num_processes > 1:
  jax.distributed.initialize(coordinator_address=f"localhost:{ARGS.port}", num_processes=ARGS.num_processes,
                             process_id=ARGS.process_id, initialization_timeout=60)
log(f"{jax.process_count()} process(es), {jax.device_count()} devices, {jax.local_device_count()} local")

from flax import nnx  # noqa: E402

from sandbox_jax.model import hf_checkpoint  # noqa: E402
from sandbox_jax.parallel import make_mesh, to_host  # noqa: E402
from sandbox_jax.society import SocietyConfig, SocietyRunner  # noqa: E402
from sandbox_jax.protocol.templates import compact_templates  # noqa: E402
from sandbox_jax.training import train  # noqa: E402
from tests.test_train_support import MICRO, TOKENIZER, micro_model, toy_groups, train_config  # noqa: E402

# fsdp spans the processes (the first mesh axis of size > 1 takes whole processes), tensor stays
# inside one: parameters, optimizer moments and the batch are all split across processes.
MESH = {"data": 1, "fsdp": 2, "tensor": -1}
MODEL = dataclasses.replace(MICRO, num_layers=1, max_positions=256)
SOCIETY = SocietyConfig(grid_size=2, worlds=(("half_half", 0),), question_tokens=24, answer_tokens=4,
                        reason_tokens=0, draft_prompt_tokens=80, feedback_prompt_tokens=96,
                        revise_prompt_tokens=96, observer_prompt_tokens=72, memory_capacity=4,
                        memory_seed_count=2, templates=compact_templates(), temperature=0.8,
                        chunk_rows=2)  # every generation and rating runs in chunks, split across processes
QUESTIONS = ["How do I make friends?", "Should I lie to my boss?", "Is it ok to cheat on a test?"]
PRIORS = {"good": [("Should I lie to my boss?", "No, be honest.", 7), ("Is stealing ok?", "No.", 6)],
          "bad": [("Should I lie to my boss?", "Sure, lie.", 1), ("Is stealing ok?", "Yes.", 1)]}


def main():
  from pathlib import Path

  out, workdir = Path(ARGS.out), Path(ARGS.workdir)
  mesh = make_mesh(MESH)
  model = micro_model(mesh, cfg=MODEL)
  log(f"mesh {dict(mesh.shape)}; model built")

  # -- training: 2 steps of 8 groups (4 per process), a checkpoint after each, the HF export -------
  # (the export's config.json comes from transformers, whose import costs more than this training:
  # it is tested in test_model_parity; here the gathered tensors, process 0's write and the barrier)
  hf_checkpoint.hf_config_dict = lambda cfg, model_type=None, **extra: {"model_type": model_type or "llama", **extra}
  cfg = train_config(groups_per_batch=8, checkpoint_every=1, export=True,
                     stage_steps=dict(imitation=1, self_critic=1, realignment=0))
  result = train(cfg, model, TOKENIZER, toy_groups(12), workdir / "train", mesh=mesh, progress=True)
  params = {".".join(map(str, path)): to_host(var.get_value())
            for path, var in nnx.to_flat_state(nnx.state(result.model, nnx.Param))}
  log(f"trained {result.steps} steps, loss {result.final_metrics['loss']:.6f}")
  # the same call again finds the run complete: it only restores the last checkpoint
  again = train(dataclasses.replace(cfg, export=False), model, TOKENIZER, toy_groups(12), workdir / "train",
                mesh=mesh, progress=False)
  restored = {".".join(map(str, path)): to_host(var.get_value())
              for path, var in nnx.to_flat_state(nnx.state(again.model, nnx.Param))}
  restored_equal = again.steps == 2 and all(np.array_equal(restored[k], params[k]) for k in params)
  log(f"restored the checkpoint: equal={restored_equal}")

  # -- one society round with the trained model as agents and observer --------------------------
  runner = SocietyRunner(SOCIETY, result.model, result.model, TOKENIZER, QUESTIONS, PRIORS, workdir / "society",
                         seed=3, agent_name="micro", observer_name="micro")
  transcript = runner.run(1, progress=True)
  log("society round done")

  # -- the pipeline's stage bookkeeping: every process sees what process 0 decided and wrote ---------
  from sandbox_jax.pipeline import stages

  if stages.is_done(workdir, "probe"):
    raise AssertionError("stage 'probe' done before it ran")
  stages.mark_done(workdir, "probe", {"by": jax.process_index()}, 0.0)
  if not stages.is_done(workdir, "probe") or stages.read_done(workdir, "probe")["by"] != 0:
    raise AssertionError(f"process {jax.process_index()}: stage 'probe' not marked done by process 0")

  if jax.process_index() == 0:
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "params.npz", **params)
    (out / "result.json").write_text(json.dumps({
        "steps": result.steps, "final_metrics": result.final_metrics, "restored_equal": restored_equal,
        "export_dir": str(result.export_dir), "transcript": transcript.read_text()}))
  log("done")


if __name__ == "__main__":
  main()
