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
  train step (32 groups, 4 micro-batches)  params 0.46 GiB, optimizer 0.93 GiB, total 4.2 GiB
  society round (1 world, 100 agents)      total 20.3 GiB, of which the largest KV cache 3.3 GiB
  (the round's memory is the feedback call's prompts × 448 tokens, 200 rows at a time: attention
  scores and KV cache)
Expected time (estimate from FLOPs and memory bandwidth on an A100, not measured): society 50 rounds
≈ 5–10 min, training 700 steps ≈ 5 min, evaluation a few minutes.
"""

from sandbox_jax.config_utils import real_scale_arg, real_scale_config

ARCHITECTURE = dict(  # config.json of openai-community/gpt2: the abstract model without the files
    model_type="gpt2", vocab_size=50257, n_embd=768, n_layer=12, n_head=12, n_positions=1024, n_inner=None,
    activation_function="gelu_new", layer_norm_epsilon=1e-5, tie_word_embeddings=True)


def get_config(arg: str | None = None):
  arg = real_scale_arg(arg, fsdp=1, tensor=1)
  config = real_scale_config(
      "gpt2_124m", arg, checkpoint_kind="GPT-2", architecture=ARCHITECTURE,
      hardware=dict(name="1 GPU, 48 GB (L40S, A6000; or an 80 GB A100/H100)", devices=1, device_memory_gb=48.0),
      accum_steps=4, max_new_tokens=96, local_grid=3, local_groups=4)
  return config
