"""Config helpers shared by `configs/*.py` (big_vision style `get_config(arg)` string args)."""

import ml_collections

from sandbox_jax.parallel.rules import DEFAULT_RULES


def parse_arg(arg: str | None, **defaults) -> ml_collections.ConfigDict:
  """Parses 'runlocal,size=small' into a ConfigDict over `defaults` (bools, ints, floats, strs).

  A bare word sets a boolean default to True. Unknown keys are errors naming the key.
  """
  out = ml_collections.ConfigDict(defaults)
  for item in filter(None, (arg or "").split(",")):
    key, _, value = item.partition("=")
    if key not in defaults:
      raise ValueError(f"config argument {key!r} is unknown; known: {sorted(defaults)}")
    kind = type(defaults[key])
    if not value:
      if kind is not bool:
        raise ValueError(f"config argument {key!r} needs a value ({key}=...)")
      out[key] = True
    elif kind is bool:
      out[key] = value.lower() in ("1", "true", "yes")
    else:
      out[key] = kind(value)
  return out


def base_config() -> ml_collections.ConfigDict:
  """Keys every run has; configs fill in the rest."""
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.workdir = "runs/default"
  config.tokenizer = "byte"           # 'byte' or a local HF checkpoint directory
  config.checkpoint = ""              # a local HF checkpoint directory, or '' for random init
  config.mesh = ml_collections.ConfigDict({"data": -1, "fsdp": 1, "tensor": 1})
  config.logical_axis_rules = [list(rule) for rule in DEFAULT_RULES]
  config.distributed = False           # jax.distributed.initialize() (TPU pods, SLURM)
  return config


def real_scale_arg(arg: str | None, *, fsdp: int, tensor: int) -> ml_collections.ConfigDict:
  """The `configs/<model>.py:path=...` arguments every real-scale config takes."""
  return parse_arg(arg, path="", questions="seed:train", runlocal=False, dtype="bfloat16", fsdp=fsdp, tensor=tensor,
                   official=False)


def real_scale_config(name: str, arg: ml_collections.ConfigDict, *, checkpoint_kind: str, architecture: dict,
                      hardware: dict, data: int = -1, accum_steps: int = 1, max_new_tokens: int = 128,
                      local_grid: int = 4, local_groups: int = 8, train_extra: dict | None = None):
  """A real-scale run of a local HF checkpoint (`configs/<name>.py`) with the paper's settings.

  Society: the paper's 10×10 grid, 50 rounds, reference templates; training (DESIGN §8): lr 2e-5,
  3% warm-up then cosine, up to 3 responses per group, 32 groups per step, 360 tokens; bf16 compute
  over fp32 master weights with full remat. `runlocal` shrinks it to a smoke run; `official` applies
  the official preset (`protocol.official.apply_official`: society, records, train.append_eos).
  """
  if not arg.path:
    raise ValueError(f"configs/{name}.py needs path=<local {checkpoint_kind} checkpoint directory>")
  config = base_config()
  config.workdir = f"runs/{name}"
  config.checkpoint = arg.path
  config.tokenizer = arg.path
  config.architecture = architecture
  config.model = dict(dtype=arg.dtype, remat_policy="full")  # overrides on top of config.json
  config.mesh.update(data=data, fsdp=arg.fsdp, tensor=arg.tensor)
  config.hardware = hardware
  config.society = dict(
      grid_size=10, worlds=[["mixed_half_half", 0]], rounds=50, questions=arg.questions, templates="reference",
      question_tokens=64, answer_tokens=48, reason_tokens=24, draft_prompt_tokens=256, feedback_prompt_tokens=448,
      revise_prompt_tokens=448, observer_prompt_tokens=384, memory_capacity=64, memory_seed_count=50,
      temperature=0.7, chunk_rows=200)  # 100 / 200 / 400 rows: 1, 1, 2 chunks
  config.train = dict(
      loss="stable_alignment", margin=1.0, ratio=0.2, lr=2e-5, warmup_ratio=0.03, groups_per_batch=32,
      accum_steps=accum_steps, max_responses=3, max_len=360, logits_chunk=120, schedule="staged",
      stage_steps=dict(imitation=300, self_critic=300, realignment=100), checkpoint_every=100, **(train_extra or {}))
  config.evaluate = dict(questions="seed:heldout", max_new_tokens=max_new_tokens, benchmarks={}, adversarial=True)
  if arg.runlocal:
    config.workdir = f"runs/{name}_local"
    config.society.update(grid_size=local_grid, rounds=2)
    config.train.update(groups_per_batch=local_groups, stage_steps=dict(imitation=2, self_critic=2, realignment=2))
    config.evaluate.update(max_new_tokens=32, adversarial=False)
  if arg.official:  # the original code's run (protocol/official.py); after runlocal: rounds size the memory
    from sandbox_jax.protocol.official import apply_official

    apply_official(config)
  return config
