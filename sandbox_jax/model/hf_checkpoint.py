"""Load a local Hugging Face checkpoint directory into the model; export the model back to it.

Loading places every tensor straight into its shard with `jax.make_array_from_callback`: each
device's callback reads (memory-mapped) only the layers its shard covers, so the model is never
assembled whole on one device. Export writes `config.json`, `*.safetensors` (+ index when sharded)
and the tokenizer files, atomically (a temp directory renamed into place).
"""

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import jax
import numpy as np
from flax import nnx
from jax.experimental import multihost_utils
from jax.sharding import Mesh, SingleDeviceSharding
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from sandbox_jax.model.config import ModelConfig
from sandbox_jax.model.factory import abstract_model
from sandbox_jax.model.hf_config import hf_config_dict, model_config_from_hf
from sandbox_jax.model.hf_tensors import TensorMap, tensor_maps
from sandbox_jax.model.transformer import Transformer
from sandbox_jax.parallel.distributed import sync
from sandbox_jax.parallel.rules import DEFAULT_RULES, Rules
from sandbox_jax.parallel.sharding import logical_shardings

INDEX_FILE = "model.safetensors.index.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
                   "merges.txt", "tokenizer.model", "generation_config.json", "chat_template.jinja")
SPECIAL_ID_KEYS = ("bos_token_id", "eos_token_id", "pad_token_id")


def _read_weight_map(index_path: Path) -> dict[str, str]:
  """The `weight_map` (tensor name -> file name) of a sharded checkpoint's index, checked."""
  try:
    index = json.loads(index_path.read_bytes().decode("utf-8"))
  except (UnicodeDecodeError, json.JSONDecodeError) as e:
    raise ValueError(f"{index_path}: not a valid JSON index ({e})") from None
  weight_map = index.get("weight_map") if isinstance(index, dict) else None
  if not isinstance(weight_map, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in weight_map.items()):
    raise ValueError(f"{index_path}: key 'weight_map' must map tensor names to file names")
  return weight_map


class SafetensorsReader(contextlib.ExitStack):
  """All tensors of a checkpoint directory by name, from one or many files (index or not)."""

  def __init__(self, directory: str | Path):
    super().__init__()
    self.directory = Path(directory)
    index_path = self.directory / INDEX_FILE
    if index_path.is_file():
      weight_map = _read_weight_map(index_path)
      files = sorted(set(weight_map.values()))
    else:
      files = sorted(p.name for p in self.directory.glob("*.safetensors"))
      weight_map = None
    if not files:
      raise FileNotFoundError(f"{self.directory}: no *.safetensors files in checkpoint directory")
    self.handles = {}
    for name in files:
      path = self.directory / name
      if not path.is_file():
        raise FileNotFoundError(f"{index_path}: lists {name}, which does not exist")
      try:
        self.handles[name] = self.enter_context(safe_open(str(path), framework="np"))
      except SafetensorError as e:  # truncated, bit-flipped or not a safetensors file at all
        self.close()
        raise ValueError(f"{path}: not a valid safetensors file ({e})") from None
    if weight_map is None:
      weight_map = {key: name for name, h in self.handles.items() for key in h.keys()}
    else:
      stored = {name: set(h.keys()) for name, h in self.handles.items()}
      for key, name in weight_map.items():
        if key not in stored[name]:
          self.close()
          raise ValueError(f"{index_path}: lists tensor {key!r} in {name}, which does not hold it")
    self.weight_map = weight_map

  def __contains__(self, name: str) -> bool:
    return name in self.weight_map

  def file_of(self, name: str) -> Path:
    return self.directory / self.weight_map[name]

  def shape(self, name: str) -> tuple[int, ...]:
    return tuple(self.handles[self.weight_map[name]].get_slice(name).get_shape())

  def get(self, name: str) -> np.ndarray:
    return self.handles[self.weight_map[name]].get_tensor(name)


def _gpt2_prefix(reader: SafetensorsReader) -> str:
  return "transformer." if "transformer.wte.weight" in reader else ""


def _validate(reader: SafetensorsReader, maps: dict[str, TensorMap], cfg: ModelConfig):
  for key, tmap in maps.items():
    for layer in (range(cfg.num_layers) if key.startswith("layers.") else [None]):
      for name, expected in zip(tmap.hf_names(layer), tmap.hf_shapes()):
        if name not in reader:
          raise ValueError(f"{reader.directory}: tensor {name!r} is missing (needed for parameter "
                           f"{key}{'' if layer is None else f', layer {layer}'})")
        if reader.shape(name) != tuple(expected):
          raise ValueError(f"{reader.file_of(name)}: tensor {name!r} has shape {reader.shape(name)}, "
                           f"but the model config implies {tuple(expected)}")


def _path_key(path) -> str:
  return ".".join(str(getattr(p, "key", getattr(p, "name", p))) for p in path)


def load_hf_checkpoint(directory: str | Path, mesh: Mesh | None = None, rules: Rules = DEFAULT_RULES,
                       **config_overrides) -> Transformer:
  """Reads `config.json` + safetensors from a local directory into a (sharded) Transformer.

  `config_overrides` replace ModelConfig fields (e.g. dtype='bfloat16', remat_policy='dots').
  """
  cfg = model_config_from_hf(directory, **config_overrides)
  with SafetensorsReader(directory) as reader:
    return load_tensors(reader, cfg, tensor_maps(cfg, _gpt2_prefix(reader)), mesh, rules)


def load_tensors(reader, cfg: ModelConfig, maps: dict[str, TensorMap], mesh: Mesh | None,
                 rules: Rules = DEFAULT_RULES) -> Transformer:
  """Streams `reader`'s HF-named tensors into a (sharded) Transformer, one parameter at a time.

  `reader` answers `name in reader`, `shape(name)`, `get(name)` and `file_of(name)` (safetensors
  or GGUF). A reader with `cache_reads` (GGUF: reads dequantize) is read once per layer of a
  parameter, however many devices ask for it; the memo is dropped before the next parameter.
  """
  _validate(reader, maps, cfg)
  graphdef, abstract_state = nnx.split(abstract_model(cfg, mesh, rules))
  if mesh is not None:
    shardings = logical_shardings(abstract_state, mesh, rules)
  else:
    device = SingleDeviceSharding(jax.devices()[0])
    shardings = jax.tree.map(lambda v: v.replace(device), abstract_state,
                             is_leaf=lambda x: isinstance(x, nnx.Variable))
  cache_reads = getattr(reader, "cache_reads", False)

  def load(path, variable, sharding):
    key = _path_key(path)
    tmap = maps[key]
    value = variable.get_value()
    dtype = value.dtype
    memo = {}

    def read_layer(layer):
      if layer in memo:
        return memo[layer]
      out = tmap.to_ours([reader.get(n) for n in tmap.hf_names(layer)]).astype(dtype)
      if cache_reads:
        memo[layer] = out
      return out

    def callback(index):
      if key.startswith("layers."):
        layers = range(*index[0].indices(cfg.num_layers))
        return np.stack([read_layer(i)[index[1:]] for i in layers])
      return read_layer(None)[index]

    array = jax.make_array_from_callback(value.shape, sharding.get_value(), callback)
    memo.clear()
    if hasattr(reader, "release"):
      reader.release()
    return variable.replace(array)

  state = jax.tree_util.tree_map_with_path(load, abstract_state, shardings,
                                           is_leaf=lambda x: isinstance(x, nnx.Variable))
  return nnx.merge(graphdef, state)


def special_token_ids(tokenizer) -> dict:
  """config.json's bos/eos/pad ids of the source: its config.json (then generation_config.json) where
  the tokenizer came from a directory, its metadata for a GGUF file, else the tokenizer's own ids."""
  source = getattr(tokenizer, "directory", None)
  found = {}
  if source is not None and Path(source).is_dir():
    for fname in ("generation_config.json", "config.json"):  # config.json wins
      if (Path(source) / fname).is_file():
        found.update({k: v for k, v in json.loads((Path(source) / fname).read_text()).items()
                      if k in SPECIAL_ID_KEYS and v is not None})
  elif getattr(tokenizer, "generated_files", None):
    generation = tokenizer.generated_files.get("generation_config.json", {})
    found = {k: v for k, v in generation.items() if k in SPECIAL_ID_KEYS}
    if isinstance(found.get("eos_token_id"), list):
      found["eos_token_id"] = found["eos_token_id"][0]
  for key, attr in zip(SPECIAL_ID_KEYS, ("bos_id", "eos_id", "pad_id")):
    if key not in found and getattr(tokenizer, attr, None) is not None and not (key == "pad_token_id" and source):
      found[key] = int(getattr(tokenizer, attr))
  return found


def _host_array(x: jax.Array) -> np.ndarray:
  if not x.is_fully_addressable:
    x = multihost_utils.process_allgather(x, tiled=True)
  return np.asarray(jax.device_get(x))


def hf_tensors_of(model: Transformer, dtype=None) -> dict[str, np.ndarray]:
  """Our parameters as HF-named NumPy tensors."""
  cfg = model.cfg
  params = {_path_key(p): v for p, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}
  tensors, fused = {}, {}
  for key, tmap in tensor_maps(cfg).items():
    array = _host_array(params[key].get_value())
    for layer in (range(cfg.num_layers) if key.startswith("layers.") else [None]):
      outs = tmap.to_hf(array if layer is None else array[layer])
      for name, out in zip(tmap.hf_names(layer), outs):
        if tmap.fused_part is None:
          tensors[name] = out
        else:
          fused.setdefault(name, {})[tmap.fused_part] = out
  for name, parts in fused.items():
    tensors[name] = np.concatenate([parts[i] for i in sorted(parts)], axis=-1)
  return {k: np.ascontiguousarray(v.astype(dtype or v.dtype)) for k, v in tensors.items()}


def export_hf_checkpoint(model: Transformer, directory: str | Path, *, model_type: str | None = None,
                         tokenizer_dir: str | Path | None = None, tokenizer=None, dtype=None,
                         max_shard_bytes: int = 4 << 30) -> Path:
  """Writes the model as a Hugging Face checkpoint directory that `transformers` loads.

  The tokenizer's files go along (`tokenizer`, an HFTokenizer: copied from its directory or written
  from its GGUF metadata; or the files of `tokenizer_dir`), and config.json keeps the source's
  special token ids, so the export tokenizes and stops generating as the source does.
  Multi-process: every process calls it (the parameters are gathered from all of them), process 0
  writes, and every process returns once the directory is complete.
  """
  directory = Path(directory)
  tensors = hf_tensors_of(model, dtype)
  if tokenizer is None and tokenizer_dir is not None:
    from sandbox_jax.model.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(tokenizer_dir)
  if jax.process_index() == 0:
    _write_hf_directory(model, directory, tensors, model_type, tokenizer, max_shard_bytes)
  sync("export_hf_checkpoint")
  return directory


def _write_hf_directory(model: Transformer, directory: Path, tensors: dict[str, np.ndarray], model_type,
                        tokenizer, max_shard_bytes: int) -> None:
  directory.parent.mkdir(parents=True, exist_ok=True)
  tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
  try:
    shards, current, size = [], {}, 0
    for name in sorted(tensors):
      if current and size + tensors[name].nbytes > max_shard_bytes:
        shards.append(current)
        current, size = {}, 0
      current[name] = tensors[name]
      size += tensors[name].nbytes
    shards.append(current)
    if len(shards) == 1:
      save_file(shards[0], str(tmp / "model.safetensors"), metadata={"format": "pt"})
    else:
      weight_map = {}
      for i, shard in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(tmp / fname), metadata={"format": "pt"})
        weight_map.update({name: fname for name in shard})
      total = sum(t.nbytes for t in tensors.values())
      (tmp / INDEX_FILE).write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map},
                                               indent=2))
    special = special_token_ids(tokenizer) if tokenizer is not None else {}
    hf = hf_config_dict(model.cfg, model_type, dtype=str(np.dtype(next(iter(tensors.values())).dtype)), **special)
    (tmp / "config.json").write_text(json.dumps(hf, indent=2, sort_keys=True))
    if hasattr(tokenizer, "write_files"):
      tokenizer.write_files(tmp, TOKENIZER_FILES)
    if directory.exists():
      old = directory.with_name(f".{directory.name}.old")
      shutil.rmtree(old, ignore_errors=True)
      os.replace(directory, old)
      os.replace(tmp, directory)
      shutil.rmtree(old, ignore_errors=True)
    else:
      os.replace(tmp, directory)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
