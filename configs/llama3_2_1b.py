"""Llama-3.2-1B (1.24B, GQA, Llama-3 rope scaling) from a local Hugging Face directory, FSDP on a TPU host.

  sandbox-jax plan     --config=configs/llama3_2_1b.py:path=/models/Llama-3.2-1B-Instruct
  launch/tpu_pod.sh --tpu my-v4-8 --zone us-central2-b -- pipeline --config=configs/llama3_2_1b.py:path=/models/Llama-3.2-1B-Instruct
  launch/local.sh -- pipeline --config=configs/llama3_2_1b.py:path=/models/Llama-3.2-1B-Instruct      # a 4- or 8-GPU host
  sbatch --nodes=1 --gpus-per-node=8 launch/slurm.sbatch pipeline --config=configs/llama3_2_1b.py:path=/models/Llama-3.2-1B-Instruct
  sandbox-jax pipeline --config=configs/llama3_2_1b.py:path=/models/Llama-3.2-1B-Instruct,runlocal    # smoke run

`path` is a local directory with config.json, *.safetensors and tokenizer.json (nothing is
downloaded; the directory must be on every worker of a pod). Hardware: a TPU v4-8 (4 chips, 32 GiB
each, one host); the mesh is FSDP over every device (`fsdp=-1`), which also shards the society's
rows and the batch, so 8 GPUs work unchanged. Paper training settings (DESIGN §8: 32 groups per
update, 360 tokens, lr 2e-5 cosine with 3% warm-up), compute in bf16 over fp32 master weights, full
remat, the 128k-vocabulary logits 120 positions at a time. The society is the paper's 10×10 grid for
50 rounds (100 agents split 4 ways).

Expected memory per device (`sandbox-jax plan`, compiled for 4 devices on CPU — an estimate; plan on
the TPU host itself for its exact figure):
  train step (32 groups)               params 1.15 GiB, optimizer 2.30 GiB, total 10.9 GiB
  society round (1 world, 100 agents)  total 22.0 GiB, of which the largest KV cache 1.5 GiB
Expected time (estimate from FLOPs and memory bandwidth at ~40% of the chips' bf16 peak, not
measured): society 50 rounds ≈ 10 min, training 700 steps ≈ 10 min, evaluation a few minutes.
"""

from sandbox_jax.config_utils import base_config, parse_arg

ARCHITECTURE = dict(  # config.json of meta-llama/Llama-3.2-1B: the abstract model without the files
    model_type="llama", vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
    num_attention_heads=32, num_key_value_heads=8, head_dim=64, max_position_embeddings=131072,
    rope_theta=500000.0, rope_scaling=dict(rope_type="llama3", factor=32.0, low_freq_factor=1.0,
                                           high_freq_factor=4.0, original_max_position_embeddings=8192),
    rms_norm_eps=1e-5, hidden_act="silu", tie_word_embeddings=True, attention_bias=False, mlp_bias=False)


def get_config(arg: str | None = None):
  arg = parse_arg(arg, path="", questions="seed:train", runlocal=False, dtype="bfloat16", fsdp=-1, tensor=1)
  if not arg.path:
    raise ValueError("configs/llama3_2_1b.py needs path=<local Llama-3.2-1B checkpoint directory>")
  config = base_config()
  config.workdir = "runs/llama3_2_1b"
  config.checkpoint = arg.path
  config.tokenizer = arg.path
  config.architecture = ARCHITECTURE
  config.model = dict(dtype=arg.dtype, remat_policy="full")  # overrides on top of config.json
  config.mesh.update(data=1, fsdp=arg.fsdp, tensor=arg.tensor)
  config.hardware = dict(name="TPU v4-8 (4 chips, 32 GiB each)", devices=4, device_memory_gb=32.0)
  config.distributed = False  # one host; launch/tpu_pod.sh sets SANDBOX_JAX_DISTRIBUTED=1 on pods
  config.society = dict(
      grid_size=10, worlds=[["mixed_half_half", 0]], rounds=50, questions=arg.questions, templates="reference",
      question_tokens=64, answer_tokens=48, reason_tokens=24, draft_prompt_tokens=256, feedback_prompt_tokens=448,
      revise_prompt_tokens=448, observer_prompt_tokens=384, memory_capacity=64, memory_seed_count=50,
      temperature=0.7)
  config.train = dict(
      loss="stable_alignment", margin=1.0, ratio=0.2, lr=2e-5, warmup_ratio=0.03, groups_per_batch=32,
      accum_steps=1, max_responses=3, max_len=360, logits_chunk=120, schedule="staged",
      stage_steps=dict(imitation=300, self_critic=300, realignment=100), checkpoint_every=100)
  config.evaluate = dict(questions="seed:heldout", max_new_tokens=128, benchmarks={}, adversarial=True)
  if arg.runlocal:
    config.workdir = "runs/llama3_2_1b_local"
    config.society.update(grid_size=4, rounds=2)
    config.train.update(groups_per_batch=8, stage_steps=dict(imitation=2, self_critic=2, realignment=2))
    config.evaluate.update(max_new_tokens=32, adversarial=False)
  return config
