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
  train step (32 groups)               params 1.15 GiB, optimizer 2.30 GiB, total 9.7 GiB
  society round (1 world, 100 agents)  total 16.4 GiB, of which the largest KV cache 0.7 GiB
Expected time (estimate from FLOPs and memory bandwidth at ~40% of the chips' bf16 peak, not
measured): society 50 rounds ≈ 10 min, training 700 steps ≈ 10 min, evaluation a few minutes.
"""

from sandbox_jax.config_utils import real_scale_arg, real_scale_config

ARCHITECTURE = dict(  # config.json of meta-llama/Llama-3.2-1B: the abstract model without the files
    model_type="llama", vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
    num_attention_heads=32, num_key_value_heads=8, head_dim=64, max_position_embeddings=131072,
    rope_theta=500000.0, rope_scaling=dict(rope_type="llama3", factor=32.0, low_freq_factor=1.0,
                                           high_freq_factor=4.0, original_max_position_embeddings=8192),
    rms_norm_eps=1e-5, hidden_act="silu", tie_word_embeddings=True, attention_bias=False, mlp_bias=False)


def get_config(arg: str | None = None):
  arg = real_scale_arg(arg, fsdp=-1, tensor=1)
  config = real_scale_config(
      "llama3_2_1b", arg, checkpoint_kind="Llama-3.2-1B", architecture=ARCHITECTURE,
      hardware=dict(name="TPU v4-8 (4 chips, 32 GiB each)", devices=4, device_memory_gb=32.0), data=1)
  config.distributed = False  # one host; launch/tpu_pod.sh sets SANDBOX_JAX_DISTRIBUTED=1 on pods
  return config
