"""Qwen2.5-0.5B (494M, qkv bias, 151k vocabulary) from a local Hugging Face directory, one GPU.

  sandbox-jax plan     --config=configs/qwen2_5_0_5b.py:path=/models/Qwen2.5-0.5B-Instruct
  sandbox-jax pipeline --config=configs/qwen2_5_0_5b.py:path=/models/Qwen2.5-0.5B-Instruct
  sandbox-jax pipeline --config=configs/qwen2_5_0_5b.py:path=/models/Qwen2.5-0.5B-Instruct,runlocal  # smoke run
  launch/local.sh -- pipeline --config=configs/qwen2_5_0_5b.py:path=/models/Qwen2.5-0.5B-Instruct
  launch/tpu_pod.sh --tpu my-v4-8 --zone us-central2-b -- pipeline --config=configs/qwen2_5_0_5b.py:path=/models/Qwen2.5-0.5B-Instruct
  sbatch --nodes=1 --gpus-per-node=8 launch/slurm.sbatch pipeline --config=configs/qwen2_5_0_5b.py:path=/models/Qwen2.5-0.5B-Instruct

`path` is a local directory with config.json, *.safetensors and tokenizer.json (base or Instruct:
same architecture; nothing is downloaded). Hardware: one 24 GB GPU (L4, A10, RTX 4090; an 80 GB
A100/H100 has room to spare); the mesh is data parallel (`data=-1`), so 8 GPUs or a TPU host split
the society's rows and the batch. Paper training settings (DESIGN §8: 32 groups per update, 360
tokens, lr 2e-5 cosine with 3% warm-up), compute in bf16 over fp32 master weights, full remat; the
151,936-token vocabulary makes the loss's logits the largest training tensor, so
`train.logits_chunk` makes them 120 positions at a time and the 32 groups run as 4 micro-batches.
The society is the paper's 10×10 grid for 50 rounds.

Expected memory per device (`sandbox-jax plan`, compiled for 1 device on CPU — an estimate; plan on
the GPU itself for its exact figure):
  train step (32 groups, 4 micro-batches)  params 1.84 GiB, optimizer 3.68 GiB, total 14.6 GiB
  society round (1 world, 100 agents)      total 11.8 GiB, of which the largest KV cache 1.1 GiB
Expected time (estimate from FLOPs and memory bandwidth on an A100, not measured; an L4 is ~3×
slower): society 50 rounds ≈ 10 min, training 700 steps ≈ 15 min, evaluation a few minutes.
"""

from sandbox_jax.config_utils import real_scale_arg, real_scale_config

ARCHITECTURE = dict(  # config.json of Qwen/Qwen2.5-0.5B: the abstract model without the files
    model_type="qwen2", vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
    num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768, rope_theta=1000000.0,
    rms_norm_eps=1e-6, hidden_act="silu", tie_word_embeddings=True, sliding_window=32768, use_sliding_window=False)


def get_config(arg: str | None = None):
  arg = real_scale_arg(arg, fsdp=1, tensor=1)
  config = real_scale_config(
      "qwen2_5_0_5b", arg, checkpoint_kind="Qwen2.5-0.5B", architecture=ARCHITECTURE,
      hardware=dict(name="1 GPU, 80 GB (A100/H100)", devices=1, device_memory_gb=80.0),
      accum_steps=4, local_grid=3, local_groups=4)
  return config
