"""GPT-2 small (124M) from a local Hugging Face directory: the smallest real model, one GPU.

  sandbox-jax plan     --config=configs/gpt2_124m.py:path=/models/gpt2             # memory, before a run
  sandbox-jax pipeline --config=configs/gpt2_124m.py:path=/models/gpt2             # one GPU
  sandbox-jax pipeline --config=configs/gpt2_124m.py:path=/models/gpt2,runlocal    # smoke run, minutes
  launch/local.sh -- pipeline --config=configs/gpt2_124m.py:path=/models/gpt2
  launch/tpu_pod.sh --tpu my-v4-8 --zone us-central2-b -- pipeline --config=configs/gpt2_124m.py:path=/models/gpt2
  sbatch --nodes=1 --gpus-per-node=8 launch/slurm.sbatch pipeline --config=configs/gpt2_124m.py:path=/models/gpt2

`path` is a local directory with config.json, model.safetensors and tokenizer.json (nothing is
downloaded). Hardware: one GPU with 48 GB; the mesh is pure data parallelism (`data=-1`), so the
same config runs unchanged on 8 GPUs or a TPU host, which split the society's rows and the batch.
Paper settings for training (DESIGN §8): lr 2e-5, 3% warm-up then cosine, up to 3 responses per
group, 32 groups per step (the official 4 GPUs × 1 × 8 accumulation), 360 tokens; compute in bf16
over fp32 master weights, full remat. GPT-2 is not instruction tuned, so its society is a systems
check of the real-scale path more than an alignment result. The society is the paper's 10×10 grid
for 50 rounds with the reference templates (the prompt widths fit them BPE-tokenized).

Expected memory per device (`sandbox-jax plan`, compiled for 1 device on CPU — an estimate; plan on
the GPU itself for its exact figure):
  train step (32 groups, 4 micro-batches)  params 0.46 GiB, optimizer 0.93 GiB, total 4.4 GiB
  society round (1 world, 100 agents)      total 35.7 GiB, of which the largest KV cache 6.7 GiB
  (the round's memory is the feedback call's 400 prompts × 448 tokens: attention scores and KV cache)
Expected time (estimate from FLOPs and memory bandwidth on an A100, not measured): society 50 rounds
≈ 5–10 min, training 700 steps ≈ 5 min, evaluation a few minutes.
"""

from sandbox_jax.config_utils import base_config, parse_arg

ARCHITECTURE = dict(  # config.json of openai-community/gpt2: the abstract model without the files
    model_type="gpt2", vocab_size=50257, n_embd=768, n_layer=12, n_head=12, n_positions=1024, n_inner=None,
    activation_function="gelu_new", layer_norm_epsilon=1e-5, tie_word_embeddings=True)


def get_config(arg: str | None = None):
  arg = parse_arg(arg, path="", questions="seed:train", runlocal=False, dtype="bfloat16", fsdp=1, tensor=1)
  if not arg.path:
    raise ValueError("configs/gpt2_124m.py needs path=<local GPT-2 checkpoint directory>")
  config = base_config()
  config.workdir = "runs/gpt2_124m"
  config.checkpoint = arg.path
  config.tokenizer = arg.path
  config.architecture = ARCHITECTURE
  config.model = dict(dtype=arg.dtype, remat_policy="full")  # overrides on top of config.json
  config.mesh.update(data=-1, fsdp=arg.fsdp, tensor=arg.tensor)
  config.hardware = dict(name="1 GPU, 48 GB (L40S, A6000; or an 80 GB A100/H100)", devices=1, device_memory_gb=48.0)
  config.society = dict(
      grid_size=10, worlds=[["mixed_half_half", 0]], rounds=50, questions=arg.questions, templates="reference",
      question_tokens=64, answer_tokens=48, reason_tokens=24, draft_prompt_tokens=256, feedback_prompt_tokens=448,
      revise_prompt_tokens=448, observer_prompt_tokens=384, memory_capacity=64, memory_seed_count=50,
      temperature=0.7)
  config.train = dict(
      loss="stable_alignment", margin=1.0, ratio=0.2, lr=2e-5, warmup_ratio=0.03, groups_per_batch=32,
      accum_steps=4, max_responses=3, max_len=360, logits_chunk=120, schedule="staged",
      stage_steps=dict(imitation=300, self_critic=300, realignment=100), checkpoint_every=100)
  config.evaluate = dict(questions="seed:heldout", max_new_tokens=96, benchmarks={}, adversarial=True)
  if arg.runlocal:
    config.workdir = "runs/gpt2_124m_local"
    config.society.update(grid_size=3, rounds=2)
    config.train.update(groups_per_batch=4, stage_steps=dict(imitation=2, self_critic=2, realignment=2))
    config.evaluate.update(max_new_tokens=32, adversarial=False)
  return config
