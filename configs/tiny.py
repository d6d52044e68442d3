"""The tiny default: the whole pipeline on a ~0.9M-parameter byte-level Llama, on a CPU.

  sandbox-jax pipeline --config=configs/tiny.py              # warm-up → simulate → train → evaluate → compare
  sandbox-jax pipeline --config=configs/tiny.py:runlocal     # micro version for tests (well under a minute)
  sandbox-jax simulate --config=configs/tiny.py:official,runlocal   # official mode (protocol/official.py)

Expected on a 2-core CPU: under 10 minutes for the whole pipeline (see benchmarks/RESULTS.md).
Society: one 5×5 world of each of two views (half_half, mixed_half_half) for 3 rounds with the compact
templates (the reference templates are too long for a byte-level 1k context); agents and observer
are the warmed-up tiny model. Sweep: `sweep()` below lists a small hyper-grid.

`official` applies the official preset (`protocol.official.apply_official`: official templates, 256
new tokens at temperature 1.0, 50 seed memories and no eviction, official records, no eos) and
widens the prompts and the model's context so the longest official prompt fits uncut at these slot
widths (byte tokens; the official rating prompts alone are ~700 bytes). The warm-up still teaches
the compact formats: official mode on the tiny model checks the machinery, not the paper's numbers.
"""

from sandbox_jax.config_utils import base_config, parse_arg


def get_config(arg: str | None = None):
  arg = parse_arg(arg, runlocal=False, official=False)
  config = base_config()
  config.workdir = "runs/tiny"
  config.model = dict(
      family="llama", vocab_size=384, embed_dim=128, mlp_dim=384, num_layers=4, num_heads=4,
      num_kv_heads=2, head_dim=32, max_positions=1024, rope_theta=10000.0, tie_embeddings=True,
      dtype="float32", param_dtype="float32", remat_policy="none", name="tiny-llama")
  config.warmup = dict(enabled=True, steps=240, groups_per_batch=16, max_len=320, lr=3e-3, answer_chars=96)
  config.society = dict(
      grid_size=5, worlds=[["half_half", 0], ["mixed_half_half", 1]], rounds=3, questions="seed:train",
      templates="compact", question_tokens=96, answer_tokens=96, reason_tokens=48, draft_prompt_tokens=320,
      feedback_prompt_tokens=448, revise_prompt_tokens=448, observer_prompt_tokens=288, memory_capacity=64,
      memory_seed_count=50, temperature=0.7)
  config.train = dict(
      loss="stable_alignment", margin=1.0, ratio=0.2, lr=3e-4, warmup_ratio=0.03, groups_per_batch=4,
      max_responses=3, max_len=320, schedule="staged", stage_steps=dict(imitation=15, self_critic=15, realignment=15))
  config.evaluate = dict(questions="seed:heldout", max_new_tokens=96, benchmarks={}, adversarial=True)
  if arg.runlocal:
    config.workdir = "runs/micro"
    config.model.update(embed_dim=32, mlp_dim=64, num_layers=1, num_heads=2, num_kv_heads=1, head_dim=16,
                        max_positions=512, name="micro-llama")
    config.warmup.update(steps=4, groups_per_batch=4, max_len=128)
    config.society.update(grid_size=2, worlds=[["half_half", 0]], rounds=2, question_tokens=32, answer_tokens=8,
                          reason_tokens=4, draft_prompt_tokens=96, feedback_prompt_tokens=128,
                          revise_prompt_tokens=128, observer_prompt_tokens=96, memory_capacity=6,
                          memory_seed_count=3)
    config.train.update(groups_per_batch=2, max_len=128, stage_steps=dict(imitation=2, self_critic=2, realignment=2))
    config.evaluate.update(max_new_tokens=8, adversarial=False)
  if arg.official:
    from sandbox_jax.protocol.official import apply_official

    apply_official(config)
    # longest official prompts, byte tokens (Q question, k raters): draft 419 + 2Q, feedback 1258 + 2Q,
    # revise 574 + Q + 257k, observer 953 + Q (tests/test_official_config.py checks they fit)
    if arg.runlocal:   # Q = 32, k = 2
      widths = dict(draft_prompt_tokens=512, feedback_prompt_tokens=1344, revise_prompt_tokens=1152,
                    observer_prompt_tokens=1024)
    else:              # Q = 96, k = 4
      widths = dict(draft_prompt_tokens=640, feedback_prompt_tokens=1472, revise_prompt_tokens=1728,
                    observer_prompt_tokens=1088)
    config.society.update(widths)
    config.model.update(max_positions=2048)   # the longest prompt + 256 new tokens
  return config


def sweep():
  """Hyper-grid declared next to the config (big_vision style): margin × ratio."""
  return [{"train.margin": m, "train.ratio": r} for m in (0.5, 1.0, 2.0) for r in (0.1, 0.2)]
