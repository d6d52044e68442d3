"""Tokenizers: the checkpoint's own (HF `tokenizers`: a directory, or a GGUF file's metadata), or a
file-free byte tokenizer.

All expose `encode(text) -> list[int]` (never adds special tokens), `decode(ids) -> str`,
`vocab_size`, `eos_id`, `pad_id`, `bos_id` (may be None), `name`, and — BOS and EOS exactly as the
checkpoint does it — `adds_bos` (whether the tokenizer itself prepends `bos_id`, i.e. what
`transformers`' `tokenizer(text)` gives: SmolLM2, Qwen2 and GPT-2 add none, Llama-2 and Mistral do)
and `stop_ids` (every id generation stops at: the EOS, the generation config's EOS list and the chat
template's end-of-turn token, e.g. `<|im_end|>`). Checkpoint tokenizers also carry `chat_template`
(None when the checkpoint has none) and `special_tokens` (the named special tokens its chat template
sees, as transformers' `special_tokens_map`); the byte tokenizer has neither. `adds_bos_of` / `stop_ids_of` read them from any
tokenizer-like object, with the old defaults for ones that lack them.
"""

import json
import shutil
from pathlib import Path
from typing import Protocol

# End-of-turn tokens of common chat templates: a template that writes one ends every turn with it.
END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|end_of_turn|>")
SPECIAL_KEYS = ("eos_token_id", "bos_token_id", "pad_token_id", "eos_token", "bos_token", "pad_token")


class Tokenizer(Protocol):
  name: str
  vocab_size: int
  eos_id: int
  pad_id: int
  bos_id: int | None
  adds_bos: bool
  stop_ids: tuple[int, ...]

  def encode(self, text: str) -> list[int]: ...

  def decode(self, ids) -> str: ...


def adds_bos_of(tokenizer) -> bool:
  """Whether `tokenizer` prepends its BOS to a text (objects without `adds_bos`: when it has one)."""
  if getattr(tokenizer, "bos_id", None) is None:
    return False
  return bool(getattr(tokenizer, "adds_bos", True))


def stop_ids_of(tokenizer) -> tuple[int, ...]:
  """The ids generation stops at (objects without `stop_ids`: just `eos_id`)."""
  ids = tuple(getattr(tokenizer, "stop_ids", None) or ())
  return ids or (int(tokenizer.eos_id),)


class ByteTokenizer:
  """UTF-8 bytes are ids 0..255; then pad=256, bos=257, eos=258. Needs no files.

  It is ours (no reference tokenizer to follow), and it prepends its BOS.
  """

  name = "byte"
  vocab_size = 259
  pad_id, bos_id, eos_id = 256, 257, 258
  adds_bos = True
  stop_ids = (258,)

  def encode(self, text: str) -> list[int]:
    return list(text.encode("utf-8"))

  def decode(self, ids) -> str:
    return bytes(int(i) for i in ids if 0 <= int(i) < 256).decode("utf-8", errors="replace")


def _special_id(tok, value) -> int | None:
  if isinstance(value, dict):
    value = value.get("content")
  if isinstance(value, str):
    return tok.token_to_id(value)
  return None


def _read_json(path: Path) -> dict:
  try:
    return json.loads(path.read_text())
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from e


def end_of_turn_ids(tok, chat_template: str | None) -> list[int]:
  """Ids of the known end-of-turn tokens that `chat_template` writes (and the vocabulary has)."""
  if not chat_template:
    return []
  ids = [tok.token_to_id(t) for t in END_OF_TURN_TOKENS if t in chat_template]
  return [i for i in ids if i is not None]


def _ordered_unique(ids) -> tuple[int, ...]:
  return tuple(dict.fromkeys(int(i) for i in ids if i is not None))


class HFTokenizer:
  """A checkpoint directory's `tokenizer.json` through HF `tokenizers` (local files only).

  `from_backend` builds one from a `tokenizers.Tokenizer` and explicit special ids (GGUF metadata).
  """

  def __init__(self, directory: str | Path):
    from tokenizers import Tokenizer as _Tokenizer

    self.directory = Path(directory)
    path = self.directory / "tokenizer.json"
    if not path.is_file():
      self._tok = self._from_legacy_files()
    else:
      try:
        self._tok = _Tokenizer.from_file(str(path))
      except Exception as e:
        raise ValueError(f"{path}: not a valid tokenizer file: {e}") from e
    self.name = self.directory.name
    self.vocab_size = self._tok.get_vocab_size(with_added_tokens=True)
    files = {f: _read_json(self.directory / f) for f in ("config.json", "generation_config.json",
                                                          "tokenizer_config.json")
             if (self.directory / f).is_file()}
    special = {}
    for fname in ("config.json", "generation_config.json", "tokenizer_config.json"):
      special.update({k: v for k, v in files.get(fname, {}).items() if k in SPECIAL_KEYS and v is not None})
    self.eos_id = self._pick(special, "eos")
    if self.eos_id is None:
      raise ValueError(f"{self.directory}: no end-of-sequence token (eos_token_id in config.json or "
                       "eos_token in tokenizer_config.json)")
    self.bos_id = self._pick(special, "bos")
    pad = self._pick(special, "pad")
    self.pad_id = self.eos_id if pad is None else pad
    tokenizer_config = files.get("tokenizer_config.json", {})
    self.chat_template = tokenizer_config.get("chat_template")
    if self.chat_template is None and (self.directory / "chat_template.jinja").is_file():
      self.chat_template = (self.directory / "chat_template.jinja").read_text()
    self.adds_bos = self._adds_bos(tokenizer_config.get("add_bos_token"))
    from sandbox_jax.protocol.chat import special_tokens_from_directory  # the chat template's variables
    self.special_tokens = special_tokens_from_directory(self.directory)
    generation_eos = files.get("generation_config.json", {}).get("eos_token_id")
    generation_eos = generation_eos if isinstance(generation_eos, list) else [generation_eos]
    self.stop_ids = _ordered_unique([self.eos_id, *generation_eos, *end_of_turn_ids(self._tok, self.chat_template)])
    self.generated_files = None  # a directory's tokenizer files are copied on export

  @classmethod
  def from_backend(cls, backend, *, name: str, eos_id: int, bos_id: int | None, pad_id: int | None,
                   adds_bos: bool, extra_stop_ids=(), chat_template: str | None = None,
                   files: dict[str, dict] | None = None) -> "HFTokenizer":
    """From a `tokenizers.Tokenizer` and its special ids; `files` are the JSON files an export writes."""
    self = cls.__new__(cls)
    self.directory, self._tok, self.name = None, backend, name
    self.vocab_size = backend.get_vocab_size(with_added_tokens=True)
    self.eos_id, self.bos_id = eos_id, bos_id
    self.pad_id = eos_id if pad_id is None else pad_id
    self.adds_bos = bool(adds_bos) and bos_id is not None
    self.chat_template = chat_template
    config = (files or {}).get("tokenizer_config.json", {})
    self.special_tokens = {k: v for k in ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token",
                                          "cls_token", "mask_token") if isinstance(v := config.get(k), str)}
    self.stop_ids = _ordered_unique([eos_id, *extra_stop_ids, *end_of_turn_ids(backend, chat_template)])
    self.generated_files = files or {}
    return self

  def _adds_bos(self, flag) -> bool:
    """`add_bos_token` where tokenizer_config.json sets it (transformers honours it), else whether the
    tokenizer's own post-processor puts `bos_id` in front of a text."""
    if self.bos_id is None:
      return False
    if isinstance(flag, bool):
      return flag
    with_special = self._tok.encode("a", add_special_tokens=True).ids
    without = self._tok.encode("a", add_special_tokens=False).ids
    return len(with_special) > len(without) and with_special[0] == self.bos_id

  def _from_legacy_files(self):
    """vocab.json + merges.txt (GPT-2 style) through transformers, converted to a fast tokenizer."""
    from transformers import AutoTokenizer

    if not (self.directory / "vocab.json").is_file():
      raise FileNotFoundError(f"{self.directory}: no tokenizer.json (or vocab.json + merges.txt)")
    return AutoTokenizer.from_pretrained(str(self.directory), local_files_only=True).backend_tokenizer

  def _pick(self, special, kind) -> int | None:
    value = special.get(f"{kind}_token_id")
    if isinstance(value, list):
      value = value[0]
    if isinstance(value, int):
      return value
    return _special_id(self._tok, special.get(f"{kind}_token"))

  def encode(self, text: str) -> list[int]:
    return self._tok.encode(text, add_special_tokens=False).ids

  def decode(self, ids) -> str:
    return self._tok.decode([int(i) for i in ids], skip_special_tokens=True)

  def write_files(self, directory: str | Path, names=("tokenizer.json", "tokenizer_config.json",
                                                      "special_tokens_map.json", "vocab.json", "merges.txt",
                                                      "tokenizer.model", "generation_config.json",
                                                      "chat_template.jinja")) -> None:
    """The tokenizer's files into `directory` (an export): copied from the source directory, or
    written from the GGUF metadata (tokenizer.json, tokenizer_config.json, generation_config.json)."""
    directory = Path(directory)
    if self.directory is not None:
      for fname in names:
        if (self.directory / fname).is_file():
          shutil.copy2(self.directory / fname, directory / fname)
      return
    self._tok.save(str(directory / "tokenizer.json"))
    for fname, content in self.generated_files.items():
      (directory / fname).write_text(json.dumps(content, indent=2, ensure_ascii=False))


def load_tokenizer(spec: str | Path, model_vocab_size: int | None = None) -> Tokenizer:
  """'byte', a checkpoint directory, or a GGUF file (path or `pkg:<package>/<file>`); checks the
  vocabulary fits the model's embedding table."""
  from sandbox_jax.model.gguf import is_gguf, load_gguf_tokenizer

  if str(spec) == "byte":
    tok, where = ByteTokenizer(), "the byte tokenizer"
  elif is_gguf(spec):
    tok = load_gguf_tokenizer(spec)
    where = f"{spec} (tokenizer.ggml.tokens)"
  else:
    tok, where = HFTokenizer(spec), f"{Path(spec) / 'tokenizer.json'}"
  if model_vocab_size is not None and tok.vocab_size > model_vocab_size:
    raise ValueError(f"{where}: tokenizer has {tok.vocab_size} tokens, but the model's vocab_size is "
                     f"{model_vocab_size} (config key model.vocab_size / config.json vocab_size)")
  return tok
