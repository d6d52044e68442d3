"""`sandbox-jax reproduce` on the tiny byte-level model: the whole comparison's machinery in minutes.

  sandbox-jax data --sdist=<bigbench-1.0.0.tar.gz> --out=data/bigbench
  sandbox-jax reproduce --config=configs/reproduce_tiny.py:data=data/bigbench           # six arms, 3 seeds
  sandbox-jax reproduce --config=configs/reproduce_tiny.py:runlocal,data=<dir>          # micro: base and
                                                          # stable_alignment_staged (only=... for others), 1 seed
  sandbox-jax reproduce --config=configs/reproduce_tiny.py:arms=ratio                   # an ablation
  sandbox-jax reproduce --config=configs/reproduce_tiny.py:only=sft+stable_alignment_staged

The start model, society and records are the tiny pipeline's (configs/tiny.py, warm-up included);
`arms` picks paper (base, sft, dpo, rrhf, stable_alignment_staged/mixed), ratio (λ 0/0.1/0.2/0.5),
responses (2/3/4 per group) or stages (imitation; + self-critic; + realignment). A tiny random model
says nothing about alignment; this config exists to exercise and time the machinery.
"""

import sys
from pathlib import Path

from sandbox_jax.config_utils import parse_arg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from configs.tiny import get_config as tiny_config  # noqa: E402
from sandbox_jax.pipeline.reproduce import paper_arms, ratio_arms, responses_arms, stage_arms  # noqa: E402


def arm_set(name: str, stage_steps: dict) -> list:
  """The named set of arms over the config's stage budget."""
  sets = {"paper": paper_arms, "ratio": ratio_arms, "responses": responses_arms,
          "stages": lambda: stage_arms(stage_steps)}
  if name not in sets:
    raise ValueError(f"config argument arms={name!r}: known sets {sorted(sets)}")
  return sets[name]()


def get_config(arg: str | None = None):
  arg = parse_arg(arg, runlocal=False, data="", arms="paper", seeds=3, only="")
  config = tiny_config("runlocal" if arg.runlocal else None)
  config.workdir = "runs/reproduce_micro" if arg.runlocal else "runs/reproduce_tiny"
  benchmarks = {}
  if arg.data:
    from sandbox_jax.evaluation.tasks.bigbench_extract import bigbench_tasks

    benchmarks = bigbench_tasks(arg.data)
  stage_steps = dict(config.train.stage_steps)
  config.reproduce = dict(
      arms=arm_set(arg.arms, stage_steps), seeds=list(range(arg.seeds)), benchmarks=benchmarks,
      max_docs_per_task=0, questions="seed:heldout", max_questions=0, adversarial=True,
      prompt_template="alpaca", max_new_tokens=config.evaluate.max_new_tokens, batch_size=64,
      observer="", transcript="", n_resamples=1000, ci_seed=0, columns=[],
      title="Stable Alignment vs baselines (tiny byte-level model)")
  if arg.runlocal:
    config.train.update(checkpoint_every=1)
    config.reproduce.update(seeds=[0], max_docs_per_task=3, max_questions=2, max_new_tokens=4, n_resamples=200)
  only = arg.only or ("base+stable_alignment_staged" if arg.runlocal and arg.arms == "paper" else "")
  if only:   # e.g. only=sft+dpo: a subset of the arms (another workdir, or the setup check refuses it)
    names = only.split("+")
    known = [a[0] for a in config.reproduce.arms]
    if set(names) - set(known):
      raise ValueError(f"config argument only={only!r}: arms are {known}")
    config.reproduce.arms = [a for a in config.reproduce.arms if a[0] in names]
  return config
