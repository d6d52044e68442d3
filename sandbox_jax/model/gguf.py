"""GGUF checkpoints (llama.cpp's one-file format): the model and the tokenizer from one file.

A checkpoint is a `.gguf` path or `pkg:<package>/<file>` (a file shipped inside an installed
package, found without importing the package). The architecture comes from the metadata
(`general.architecture`: llama — Mistral files say llama too — or qwen2), the tensors are read with
`gguf.GGUFReader` (memory-mapped) and dequantized with its NumPy `dequantize` one tensor at a time,
as the loader asks for them (`GGUFTensors` answers to the Hugging Face tensor names, so the HF
loader streams it into the model's shards exactly as it streams safetensors). llama.cpp stores the
q/k projections of Llama-type models with the rotary halves interleaved per head; that permutation
is undone on read. The tokenizer is rebuilt from `tokenizer.ggml.*` with transformers' own GGUF
tokenizer converter (no torch): tokens, merges, token types, special ids, `add_bos_token` and
`tokenizer.chat_template`.
"""

import functools
import importlib.util
from pathlib import Path

import numpy as np

from sandbox_jax.model.config import ModelConfig

GGUF_ARCHITECTURES = ("llama", "mistral", "qwen2")
# Quantization types read (each tested against transformers' own GGUF loading).
DEQUANTIZED_TYPES = ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K")
TOKEN_TYPE_CONTROL = 3

_LAYER_NAMES = {  # GGUF name inside blk.N → HF name inside model.layers.N
    "attn_norm.weight": "input_layernorm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight", "attn_q.bias": "self_attn.q_proj.bias",
    "attn_k.weight": "self_attn.k_proj.weight", "attn_k.bias": "self_attn.k_proj.bias",
    "attn_v.weight": "self_attn.v_proj.weight", "attn_v.bias": "self_attn.v_proj.bias",
    "attn_output.weight": "self_attn.o_proj.weight", "attn_output.bias": "self_attn.o_proj.bias",
    "ffn_gate.weight": "mlp.gate_proj.weight", "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
}
_TOP_NAMES = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
              "output.weight": "lm_head.weight"}


def is_gguf(spec) -> bool:
  return str(spec).startswith("pkg:") or str(spec).endswith(".gguf")


def resolve_gguf_path(spec: str | Path) -> Path:
  """A `.gguf` path as is; `pkg:<package>/<file>` → that file inside the installed package.

  The package is located with `importlib.util.find_spec`, which does not run its `__init__` (a
  package that ships weights may import things the file does not need).
  """
  spec = str(spec)
  if not spec.startswith("pkg:"):
    path = Path(spec)
    if not path.is_file():
      raise FileNotFoundError(f"{path}: no such GGUF file")
    return path
  package, _, relative = spec[len("pkg:"):].partition("/")
  if not package or not relative:
    raise ValueError(f"{spec}: a package checkpoint is written pkg:<package>/<file inside it>")
  found = importlib.util.find_spec(package)
  if found is None or not found.submodule_search_locations:
    raise FileNotFoundError(f"{spec}: Python package {package!r} is not installed")
  for root in found.submodule_search_locations:
    if (Path(root) / relative).is_file():
      return Path(root) / relative
  raise FileNotFoundError(f"{spec}: package {package!r} (at {list(found.submodule_search_locations)}) has no "
                          f"file {relative!r}")


def open_gguf(spec: str):
  """(path, gguf.GGUFReader) of a checkpoint spec; cached (model and tokenizer read one file) while
  the file is unchanged."""
  path = resolve_gguf_path(spec)
  stat = path.stat()
  return path, _reader(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=2)
def _reader(path: str, mtime_ns: int, size: int):
  import gguf

  try:
    return gguf.GGUFReader(path)
  except Exception as e:
    raise ValueError(f"{path}: not a valid GGUF file ({type(e).__name__}: {e})") from None


def _value(reader, key: str, default=None):
  field = reader.fields.get(key)
  return default if field is None else field.contents()


def gguf_architecture(path: Path, reader) -> tuple[str, str]:
  """(GGUF architecture, Hugging Face model_type): Mistral files say 'llama' but name themselves."""
  arch = _value(reader, "general.architecture")
  if arch not in GGUF_ARCHITECTURES:
    raise ValueError(f"{path}: GGUF architecture {arch!r} is not supported; supported: {GGUF_ARCHITECTURES}")
  name = str(_value(reader, "general.name", "")).lower()
  return arch, "mistral" if arch == "mistral" or (arch == "llama" and "mistral" in name) else arch


def gguf_model_config(spec: str, **overrides) -> ModelConfig:
  """The ModelConfig of a GGUF file from its metadata (and which tensors it has)."""
  path, reader = open_gguf(str(spec))
  arch, _ = gguf_architecture(path, reader)

  def need(key):
    value = _value(reader, f"{arch}.{key}")
    if value is None:
      raise ValueError(f"{path}: metadata key {arch}.{key} is missing")
    return value

  names = {t.name for t in reader.tensors}
  scaling = _value(reader, f"{arch}.rope.scaling.type")
  if scaling not in (None, "none") or "rope_freqs.weight" in names:
    raise ValueError(f"{path}: rope scaling ({scaling or 'rope_freqs.weight'}) is not supported for GGUF files")
  if _value(reader, f"{arch}.expert_count"):
    raise ValueError(f"{path}: mixture-of-experts GGUF files are not supported")
  d, heads = int(need("embedding_length")), int(need("attention.head_count"))
  tokens = reader.fields.get("tokenizer.ggml.tokens")
  vocab = _value(reader, f"{arch}.vocab_size") or (len(tokens.data) if tokens is not None else None)
  if vocab is None:
    vocab = int(reader.get_tensor(_tensor_index(reader, "token_embd.weight")).shape[1])
  values = dict(
      family="llama", vocab_size=int(vocab), embed_dim=d, mlp_dim=int(need("feed_forward_length")),
      num_layers=int(need("block_count")), num_heads=heads,
      num_kv_heads=int(_value(reader, f"{arch}.attention.head_count_kv") or heads),
      head_dim=int(_value(reader, f"{arch}.attention.key_length") or d // heads),
      max_positions=int(need("context_length")),
      norm_eps=float(need("attention.layer_norm_rms_epsilon")),
      rope_theta=float(_value(reader, f"{arch}.rope.freq_base", 10000.0)),
      qkv_bias="blk.0.attn_q.bias" in names, out_bias="blk.0.attn_output.bias" in names, mlp_bias=False,
      tie_embeddings="output.weight" not in names, name=path.stem)
  values.update(overrides)
  return ModelConfig(**values)


def _tensor_index(reader, name: str) -> int:
  for i, t in enumerate(reader.tensors):
    if t.name == name:
      return i
  raise KeyError(name)


def _hf_name(gguf_name: str) -> str | None:
  if gguf_name in _TOP_NAMES:
    return _TOP_NAMES[gguf_name]
  parts = gguf_name.split(".", 2)
  if len(parts) == 3 and parts[0] == "blk" and parts[1].isdigit() and parts[2] in _LAYER_NAMES:
    return f"model.layers.{parts[1]}.{_LAYER_NAMES[parts[2]]}"
  return None


def unpermute_rotary(w: np.ndarray, n_heads: int) -> np.ndarray:
  """Undoes llama.cpp's q/k permutation (convert_hf_to_gguf `permute`): per head, llama.cpp lays
  out the rotary pairs interleaved (x0, x_half, x1, x_half+1, ...); HF keeps the two halves apart."""
  half = w.shape[0] // n_heads // 2
  return w.reshape(n_heads, half, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


class GGUFTensors:
  """A GGUF file's tensors under their Hugging Face names, dequantized to fp32 on read.

  Same interface as hf_checkpoint.SafetensorsReader (`in`, `shape`, `get`, `file_of`); reads are
  memoized per tensor until `release()`, because every device's shard callback asks for the same
  tensor and dequantizing is the expensive part.
  """

  cache_reads = True

  def __init__(self, spec: str, cfg: ModelConfig):
    self.path, self.reader = open_gguf(str(spec))
    self.directory = self.path
    self.arch, _ = gguf_architecture(self.path, self.reader)
    self.cfg = cfg
    self.tensors = {}
    for tensor in self.reader.tensors:
      hf = _hf_name(tensor.name)
      if hf is None:
        raise ValueError(f"{self.path}: tensor {tensor.name!r} is not part of a {self.arch} model this loader "
                         "knows")
      if tensor.tensor_type.name not in DEQUANTIZED_TYPES:  # before anything is read or allocated
        raise ValueError(f"{self.path}: tensor {tensor.name!r} has quantization type {tensor.tensor_type.name}, "
                         f"which is not supported; supported: {DEQUANTIZED_TYPES}")
      self.tensors[hf] = tensor
    self._memo = {}

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.release()

  def __contains__(self, name: str) -> bool:
    return name in self.tensors

  def file_of(self, name: str) -> Path:
    return self.path

  def shape(self, name: str) -> tuple[int, ...]:
    return tuple(int(n) for n in reversed(self.tensors[name].shape))  # ggml lists the fastest dim first

  def get(self, name: str) -> np.ndarray:
    if name not in self._memo:
      self._memo = {name: self._read(name)}  # one tensor at a time
    return self._memo[name]

  def release(self) -> None:
    self._memo = {}

  def _read(self, name: str) -> np.ndarray:
    from gguf import quants

    tensor = self.tensors[name]
    data = np.asarray(tensor.data)  # a plain view of the memory map (memmap views are slow to slice)
    w = quants.dequantize(data, tensor.tensor_type).astype(np.float32, copy=False).reshape(self.shape(name))
    if self.arch in ("llama", "mistral"):
      if ".q_proj." in name:
        w = unpermute_rotary(w, self.cfg.num_heads)
      elif ".k_proj." in name:
        w = unpermute_rotary(w, self.cfg.num_kv_heads)
    return w


def _tokenizer_dict(reader) -> dict:
  """`tokenizer.ggml.*` under the names transformers' GGUF tokenizer converter reads."""
  keys = {"model": "tokenizer_type", "pre": "pre_tokenizer_type", "tokens": "tokens", "scores": "scores",
          "token_type": "token_type", "merges": "merges", "bos_token_id": "bos_token_id",
          "eos_token_id": "eos_token_id", "unknown_token_id": "unk_token_id",
          "padding_token_id": "pad_token_id", "add_space_prefix": "add_prefix_space"}
  return {ours: _value(reader, f"tokenizer.ggml.{key}") for key, ours in keys.items()
          if f"tokenizer.ggml.{key}" in reader.fields}


def load_gguf_tokenizer(spec: str):
  """The tokenizer a GGUF file describes, as an HFTokenizer (BOS/EOS as the file says)."""
  from tokenizers import processors
  from transformers.integrations.gguf.gguf_tokenizer_mapping import convert_gguf_tokenizer

  from sandbox_jax.model.tokenizer import HFTokenizer

  path, reader = open_gguf(str(spec))
  arch = _value(reader, "general.architecture")
  info = _tokenizer_dict(reader)
  if "tokens" not in info:
    raise ValueError(f"{path}: no tokenizer in the GGUF metadata (tokenizer.ggml.tokens)")
  try:
    backend, _ = convert_gguf_tokenizer(arch, info)
  except Exception as e:
    raise ValueError(f"{path}: cannot build its tokenizer (tokenizer.ggml.model="
                     f"{info.get('tokenizer_type')!r}): {e}") from e
  tokens = info["tokens"]
  eos = info.get("eos_token_id")
  if eos is None:
    raise ValueError(f"{path}: no end-of-sequence token (tokenizer.ggml.eos_token_id)")
  bos, pad, unk = (info.get(k) for k in ("bos_token_id", "pad_token_id", "unk_token_id"))
  # transformers: a sentencepiece ('llama') vocabulary without the flag gets BOS, as llama.cpp does.
  add_bos = _value(reader, "tokenizer.ggml.add_bos_token", info.get("tokenizer_type") == "llama")
  add_eos = _value(reader, "tokenizer.ggml.add_eos_token", False)
  if add_eos:
    raise ValueError(f"{path}: tokenizer.ggml.add_eos_token is set; a tokenizer that appends EOS to every "
                     "text is not supported")
  if add_bos and bos is not None:
    backend.post_processor = processors.TemplateProcessing(
        single=f"{tokens[bos]} $A", pair=f"{tokens[bos]} $A {tokens[bos]} $B", special_tokens=[(tokens[bos], bos)])
  else:
    backend.post_processor = processors.TemplateProcessing(single="$A", pair="$A $B", special_tokens=[])
  template = _value(reader, "tokenizer.chat_template")
  extra_stops = [_value(reader, f"tokenizer.ggml.{k}_token_id") for k in ("eot", "eom")]
  name_of = lambda i: None if i is None else tokens[i]
  tokenizer_config = {
      "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": name_of(bos), "eos_token": name_of(eos),
      "pad_token": name_of(pad), "unk_token": name_of(unk), "add_bos_token": bool(add_bos),
      "add_eos_token": False, "clean_up_tokenization_spaces": False,
      "model_max_length": int(_value(reader, f"{arch}.context_length", 0) or 0) or None}
  if template:
    tokenizer_config["chat_template"] = template
  generation_config = {"bos_token_id": bos, "eos_token_id": eos, "pad_token_id": pad}
  stops = [i for i in extra_stops if i is not None]
  if stops:
    generation_config["eos_token_id"] = [eos, *[i for i in stops if i != eos]]
  return HFTokenizer.from_backend(
      backend, name=path.stem, eos_id=int(eos), bos_id=None if bos is None else int(bos),
      pad_id=None if pad is None else int(pad), adds_bos=bool(add_bos), extra_stop_ids=stops,
      chat_template=template,
      files={"tokenizer_config.json": {k: v for k, v in tokenizer_config.items() if v is not None},
             "generation_config.json": {k: v for k, v in generation_config.items() if v is not None}})


def gguf_special_ids(spec: str) -> dict:
  """bos/eos/pad token ids of a GGUF file, for an exported config.json."""
  _, reader = open_gguf(str(spec))
  return {f"{k}_token_id": int(_value(reader, f"tokenizer.ggml.{g}_token_id"))
          for k, g in (("bos", "bos"), ("eos", "eos"), ("pad", "padding"))
          if f"tokenizer.ggml.{g}_token_id" in reader.fields}
