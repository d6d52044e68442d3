"""LLaMA-7B (6.7B) with the paper's Stable Alignment settings, FSDP over one 8-GPU node.

  sandbox-jax plan --config=configs/llama_7b.py:path=/models/llama-7b
  sbatch --nodes=1 --gpus-per-node=8 launch/slurm.sbatch pipeline --config=configs/llama_7b.py:path=/models/llama-7b
  launch/local.sh -- pipeline --config=configs/llama_7b.py:path=/models/llama-7b                 # one 8-GPU host
  launch/tpu_pod.sh --tpu my-v5p-16 --zone us-east5-a -- pipeline --config=configs/llama_7b.py:path=/models/llama-7b
  sandbox-jax pipeline --config=configs/llama_7b.py:path=/models/llama-7b,runlocal               # smoke run

`path` is a local HF directory of a LLaMA-7B-architecture model (the paper started from its SFT
model, `agi-css/hh-rlhf-sft`, on LLaMA-7B): config.json, *.safetensors and the tokenizer files
(nothing is downloaded; on a pod, every worker needs the directory). Hardware: 8 × A100/H100 80 GB
(one node). Mesh: FSDP 4 × tensor 2 (`data=-1` takes any further devices). Pure 8-way FSDP would
not do for the society: its 100 agents do not split over 8 batch shards, so the draft and revision
calls would run replicated (`sandbox-jax plan` flags this; 99.6 GiB per device); 4-way batch × 2-way
heads shards every call 8 ways. On TPU, a v5p-16 (8 chips, 95 GiB) takes the same mesh; a v4-32
(16 chips, 32 GiB) with `fsdp=4,tensor=4` plans at 30.3 GiB for the round — too tight.

The paper's training setting (DESIGN §8; the official script: 4 GPUs × 1 group × 8 accumulation
steps = 32 groups per update, 360 tokens, bf16): Stable Alignment with margin M = 1, ratio λ = 0.2,
rating scale 7, up to 3 responses per group, AdamW lr 2e-5 with 3% linear warm-up then cosine, no
weight decay, clipping at 1. Here: fp32 master weights and Adam moments, bf16 compute, full remat.
The society is the paper's: a 10×10 grid, 50 rounds, k = 4 raters.

Expected memory per device (`sandbox-jax plan`, compiled for 8 devices on CPU — an estimate; plan
on the GPUs themselves for their exact figure):
  train step (32 groups)               params 3.14 GiB, optimizer 6.28 GiB, total 19.8 GiB
  society round (1 world, 100 agents)  total 42.2 GiB, of which the largest KV cache 5.9 GiB
Expected time (estimate from FLOPs and memory bandwidth at ~40% of the GPUs' bf16 peak, not
measured): society 50 rounds ≈ 30 min (FSDP re-gathers the weights every decode step), training
700 steps ≈ 25 min, evaluation ≈ 15 min.
"""

from sandbox_jax.config_utils import real_scale_arg, real_scale_config

ARCHITECTURE = dict(  # config.json of LLaMA-7B (huggyllama/llama-7b): the abstract model without the files
    model_type="llama", vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
    num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=2048, rope_theta=10000.0,
    rms_norm_eps=1e-6, hidden_act="silu", tie_word_embeddings=False)


def get_config(arg: str | None = None):
  arg = real_scale_arg(arg, fsdp=4, tensor=2)
  config = real_scale_config(
      "llama_7b", arg, checkpoint_kind="LLaMA-7B", architecture=ARCHITECTURE,
      hardware=dict(name="8 × A100/H100 80 GB", devices=8, device_memory_gb=80.0),
      train_extra=dict(scale=7.0, aggregation="mean", weight_decay=0.0, grad_clip=1.0))
  return config
