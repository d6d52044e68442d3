"""Corrupt and truncated inputs (property-based): every reader below, given its valid file cut at any
byte, with a bit flipped, emptied, or (JSON formats) with a value replaced by a wrong type, a huge
number or removed, either reads it or raises ONE clear error: a ValueError (or FileNotFoundError)
whose message names the file (and line / row / key where there is one). Never an exception from
inside a library (UnicodeDecodeError, JSONDecodeError, KeyError, OverflowError, SafetensorError...),
never a hang (each example has a deadline).

Readers: transcript files and the runner's round files, question files (text and JSONL), the
benchmark task files (hhh_alignment task.json, TruthfulQA.csv, the five ETHICS CSVs, moral_stories
JSONL, HH-RLHF JSONL.gz), config files (the command line's `--config`), safetensors checkpoints,
record files (`records.jsonl`), `sandbox_v1.json`, GGUF checkpoints (header, metadata and tensors)
and, with a few deterministic damages, orbax train checkpoints.
"""

import gzip
import json
import math
import pathlib
import struct
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox_jax.evaluation.society_metrics import load_transcript
from sandbox_jax.evaluation.tasks.registry import load_task
from sandbox_jax.society.questions import load_questions

ROOT = pathlib.Path(__file__).parent.parent
FIX = pathlib.Path(__file__).parent / "fixtures"
SETTINGS = settings(max_examples=30, deadline=10_000, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
LIBRARY_ERRORS = (UnicodeError, json.JSONDecodeError)


def _transcript_bytes() -> bytes:
  return "".join((FIX / "society" / "transcript.jsonl").read_text().splitlines(keepends=True)[:3]).encode()


def _safetensors_bytes() -> bytes:
  from safetensors.numpy import save

  return save({"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(4, np.int64)})


def _read_safetensors(path):
  from sandbox_jax.model.hf_checkpoint import SafetensorsReader

  with SafetensorsReader(path.parent) as reader:
    return {name: reader.get(name) for name in reader.weight_map}


def _records_bytes() -> bytes:
  from sandbox_jax.data.records import read_transcripts, rows_to_records

  rows = read_transcripts(FIX / "society" / "transcript.jsonl")[:2]
  return "".join(json.dumps(r.to_dict()) + "\n" for r in rows_to_records(rows)[:4]).encode()


def _read_records(path):
  from sandbox_jax.data.records import read_records

  return read_records(path)


def _sandbox_v1_bytes() -> bytes:
  from sandbox_jax.data.records import group_records, read_transcripts, rows_to_records
  from sandbox_jax.data.sandbox_v1 import to_sandbox_v1

  rows = read_transcripts(FIX / "society" / "transcript.jsonl")[:2]
  return json.dumps(to_sandbox_v1(group_records(rows_to_records(rows))[:2]), indent=2).encode()


def _read_sandbox_v1(path):
  from sandbox_jax.data.sandbox_v1 import read_sandbox_v1

  return _quiet(read_sandbox_v1, path)


def _gguf_bytes() -> bytes:
  """A tiny llama GGUF (tokenizer metadata, F32 and F16 tensors) as llama.cpp lays it out."""
  import tempfile

  import gguf

  rng = np.random.default_rng(0)
  with tempfile.TemporaryDirectory() as tmp:
    path = pathlib.Path(tmp) / "tiny.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny")
    for add, value in ((writer.add_block_count, 1), (writer.add_context_length, 16), (writer.add_embedding_length, 8),
                       (writer.add_feed_forward_length, 16), (writer.add_head_count, 2), (writer.add_head_count_kv, 1),
                       (writer.add_layer_norm_rms_eps, 1e-5), (writer.add_vocab_size, 6)):
      add(value)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(["<s>", "</s>", "a", "b", "c", "ab"])
    writer.add_bos_token_id(0)
    writer.add_eos_token_id(1)
    writer.add_tensor("token_embd.weight", rng.standard_normal((6, 8)).astype(np.float32))
    writer.add_tensor("output_norm.weight", np.ones(8, np.float32))
    writer.add_tensor("blk.0.attn_q.weight", rng.standard_normal((8, 8)).astype(np.float16))
    writer.add_tensor("blk.0.attn_k.weight", rng.standard_normal((4, 8)).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path.read_bytes()


def _read_gguf(path):
  """What loading a GGUF checkpoint reads: its model config, special token ids and every tensor."""
  from sandbox_jax.model.gguf import GGUFTensors, gguf_model_config, gguf_special_ids

  cfg = gguf_model_config(str(path))
  gguf_special_ids(str(path))
  with GGUFTensors(str(path), cfg) as weights:
    return {name: weights.get(name) for name in weights.tensors}


def _read_config(path):
  from sandbox_jax.main import load_config

  with warnings.catch_warnings():  # a flipped bit may make an invalid escape sequence: a warning, not an error
    warnings.simplefilter("ignore", DeprecationWarning)
    return load_config(str(path))


def _quiet(fn, *args):
  """`fn(*args)` without the HH-RLHF loader's skipped-lines warning (the fixture has such lines)."""
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    return fn(*args)


# name -> (file name, valid bytes, reader(path) -> anything, JSON layout: None, "lines" or "document")
READERS = {
    "transcript": ("transcript.jsonl", _transcript_bytes, load_transcript, "lines"),
    "round file": ("rounds/round_00000.jsonl", _transcript_bytes, lambda p: load_transcript(p.parent), "lines"),
    "questions txt": ("questions.txt", lambda: b"How do I stay safe?\nWhat is fair?\n", load_questions, None),
    "questions jsonl": ("questions.jsonl",
                        lambda: b'{"question": "Is it right?"}\n{"prompt": "Why?"}\n'
                                b'{"chosen": "\\n\\nHuman: Hi?\\n\\nAssistant: Hello."}\n',
                        load_questions, "lines"),
    "hhh_alignment": ("honest/task.json",
                      lambda: (FIX / "eval" / "hhh_alignment" / "honest" / "task.json").read_bytes(),
                      lambda p: load_task("hhh_alignment", p), "document"),
    "truthfulqa": ("TruthfulQA.csv", lambda: (FIX / "eval" / "TruthfulQA.csv").read_bytes(),
                   lambda p: load_task("truthfulqa_mc2", p), None),
    **{f"ethics_{name}": (f"{name}.csv", lambda f=f: (FIX / "eval" / "ethics" / f).read_bytes(),
                          lambda p, name=name: load_task(f"ethics_{name}", p), None)
       for name, f in (("cm", "commonsense/cm_test.csv"), ("deontology", "deontology/deontology_test.csv"),
                       ("justice", "justice/justice_test.csv"), ("utilitarianism", "utilitarianism/util_test.csv"),
                       ("virtue", "virtue/virtue_test.csv"))},
    "moral_stories": ("moral_stories.jsonl", lambda: (FIX / "eval" / "moral_stories.jsonl").read_bytes(),
                      lambda p: load_task("moral_stories", p), "lines"),
    "hh_rlhf": ("hh_rlhf.jsonl", lambda: gzip.decompress((FIX / "eval" / "hh_rlhf.jsonl.gz").read_bytes()),
                lambda p: _quiet(load_task, "hh_rlhf", p), "lines"),
    "config": ("config_file.py", lambda: (ROOT / "configs" / "tiny.py").read_bytes(), _read_config, None),
    "safetensors": ("model.safetensors", _safetensors_bytes, _read_safetensors, None),
    "records": ("records.jsonl", _records_bytes, _read_records, "lines"),
    "sandbox_v1": ("sandbox_v1.json", _sandbox_v1_bytes, _read_sandbox_v1, "document"),
    "gguf": ("tiny.gguf", _gguf_bytes, _read_gguf, None),
}
# write_records([]) writes an empty records.jsonl (a selection may keep no record): it reads back as [].
EMPTY_IS_VALID = ("records",)


def check_reader(name: str, path: pathlib.Path):
  """Reads `path` with reader `name`; returns "ok" or the clear error's message, failing the test on
  any other outcome."""
  reader = READERS[name][2]
  try:
    reader(path)
  except (ValueError, FileNotFoundError) as e:
    message = str(e)
    assert not isinstance(e, LIBRARY_ERRORS), f"{name}: a library's error leaked: {e!r}"
    named = str(path.parent) if name in ("safetensors", "round file") else str(path)
    assert named in message, f"{name}: the error does not name the file: {e!r}"
    assert "Traceback" not in message and len(message) < 2000, f"{name}: not one clear error: {message[:300]}"
    return message
  return "ok"


def _write(tmp_path, name: str, data: bytes) -> pathlib.Path:
  path = tmp_path / READERS[name][0]
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(data)
  return path


@pytest.mark.parametrize("name", list(READERS))
def test_valid_file_reads_and_empty_file_is_a_clear_error(name, tmp_path):
  assert check_reader(name, _write(tmp_path, name, READERS[name][1]())) == "ok"
  message = check_reader(name, _write(tmp_path, name, b""))
  if name in EMPTY_IS_VALID:
    assert message == "ok" and not READERS[name][2](tmp_path / READERS[name][0])
  else:
    assert message != "ok", f"{name}: an empty file must be an error, not an empty result"


@pytest.mark.parametrize("name", list(READERS))
@SETTINGS
@given(data=st.data())
def test_truncated_at_any_byte(name, tmp_path_factory, data):
  valid = READERS[name][1]()
  cut = data.draw(st.integers(0, len(valid) - 1), label="cut")
  check_reader(name, _write(tmp_path_factory.mktemp("t"), name, valid[:cut]))


@pytest.mark.parametrize("name", list(READERS))
@SETTINGS
@given(data=st.data())
def test_bit_flips(name, tmp_path_factory, data):
  valid = bytearray(READERS[name][1]())
  for _ in range(data.draw(st.integers(1, 3), label="flips")):
    i = data.draw(st.integers(0, len(valid) - 1), label="byte")
    valid[i] ^= 1 << data.draw(st.integers(0, 7), label="bit")
  check_reader(name, _write(tmp_path_factory.mktemp("f"), name, bytes(valid)))


BAD_VALUES = st.sampled_from([None, True, -1, 0, 10 ** 400, -10 ** 400, 1e308, "x", "", [], [None], {}, {"a": 1},
                              "\x00", "\ud800"])


def _paths(obj, prefix=()):
  """Every (path to a value) in a JSON document."""
  yield prefix
  if isinstance(obj, dict):
    for k, v in obj.items():
      yield from _paths(v, prefix + (k,))
  elif isinstance(obj, list):
    for i, v in enumerate(obj):
      yield from _paths(v, prefix + (i,))


def _mutate(doc, path, value, delete: bool):
  if not path:
    return value
  parent = doc
  for key in path[:-1]:
    parent = parent[key]
  if delete:
    del parent[path[-1]]
  else:
    parent[path[-1]] = value
  return doc


JSON_READERS = [name for name, spec in READERS.items() if spec[3]]


@pytest.mark.parametrize("name", JSON_READERS)
@SETTINGS
@given(data=st.data())
def test_wrong_types_missing_keys_huge_numbers(name, tmp_path_factory, data):
  text = READERS[name][1]().decode("utf-8")
  if READERS[name][3] == "lines":
    lines = text.splitlines()
    i = data.draw(st.integers(0, len(lines) - 1), label="line")
    docs, target = [json.loads(line) for line in lines], i
  else:
    docs, target = [json.loads(text)], 0
  paths = list(_paths(docs[target]))
  path = data.draw(st.sampled_from(paths), label="path")
  delete = bool(path) and data.draw(st.booleans(), label="delete")
  docs[target] = _mutate(docs[target], path, data.draw(BAD_VALUES, label="value"), delete)
  encoded = "".join(json.dumps(d) + "\n" for d in docs) if READERS[name][3] == "lines" else json.dumps(docs[0])
  check_reader(name, _write(tmp_path_factory.mktemp("m"), name, encoded.encode("utf-8")))


def test_safetensors_header_length_and_index(tmp_path):
  """A header length beyond the file, and a broken model.safetensors.index.json, name their file."""
  valid = _safetensors_bytes()
  path = _write(tmp_path, "safetensors", struct.pack("<Q", 2 ** 63) + valid[8:])
  assert "model.safetensors" in check_reader("safetensors", path)
  _write(tmp_path, "safetensors", valid)
  index = tmp_path / "model.safetensors.index.json"
  for text in ('{"weight_map": ', '{"weight_map": [1]}', '{}', '[]', '{"weight_map": {"a": 5}}'):
    index.write_text(text)
    message = check_reader("safetensors", path)
    assert str(index) in message, message


def test_config_errors_name_the_file_and_line(tmp_path):
  path = tmp_path / "config_file.py"
  path.write_text("def get_config(:\n  pass\n")
  assert f"{path}:1:" in _message(path)
  path.write_text("X = 1\n")
  assert "no get_config" in _message(path)
  path.write_text("def get_config(arg=None):\n  return 5\n")
  assert "returned int" in _message(path)
  path.write_text("def get_config(arg=None):\n  return {}[0]\n")
  assert "KeyError" in _message(path)
  assert "no such config file" in _message(tmp_path / "missing.py")
  path.write_text("import ml_collections\ndef get_config():\n  return ml_collections.ConfigDict({\"seed\": 0})\n")
  assert "config key 'workdir' is missing" in _message(path)


def _message(path):
  from sandbox_jax.main import load_config

  with pytest.raises(ValueError) as info:
    load_config(str(path))
  assert str(path) in str(info.value)
  return str(info.value)


def test_huge_numbers_are_not_overflows(tmp_path):
  """10**400 where a float is expected: a clear error, not an OverflowError from float()."""
  lines = _transcript_bytes().decode().splitlines()
  row = json.loads(lines[0])
  row["gen_moral_score_after"] = 10 ** 400
  path = _write(tmp_path, "transcript", (json.dumps(row) + "\n").encode())
  assert ":1:" in check_reader("transcript", path)
  assert math.isinf(float("1e400"))  # and the JSON float spelling parses to inf, rejected as not finite
  path.write_text(lines[0].replace('"gen_moral_score_after": ', '"gen_moral_score_after": 1e400, "x": ') + "\n")
  assert ":1:" in check_reader("transcript", path)


ORBAX_DAMAGES = ("truncated to half", "one bit flipped", "emptied", "removed")


def orbax_damage_outcomes(tmp_root: pathlib.Path):
  """Saves a small train checkpoint, then for each of its files orbax reads on restore (the meta
  JSON, the state's metadata, OCDBT manifest and data files) and each of ORBAX_DAMAGES damages a
  copy and restores it: yields (file, damage, "ok" or the clear error's message naming the
  checkpoint directory). Meta JSON that parses but has the wrong layout is tried too."""
  import dataclasses
  import shutil

  import jax

  from sandbox_jax.training.checkpoint import TrainCheckpoints

  @dataclasses.dataclass
  class TinyConfig:
    width: int = 3

  state = {"params": {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, "step": np.int32(7)}
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), np.asarray(x).dtype), state)
  pristine = tmp_root / "pristine"
  saver = TrainCheckpoints(pristine)
  saver.save(1, state, {"stage": 0}, TinyConfig())
  saver.close()
  files = sorted(p.relative_to(pristine / "1") for p in (pristine / "1").rglob("*") if p.is_file()
                 and p.name not in ("commit_success.txt", "_CHECKPOINT_METADATA") and "ocdbt.process_" not in str(p))

  def restore(label, damage, change):
    directory = tmp_root / f"{len(seen)}"
    shutil.copytree(pristine, directory)
    change(directory / "1")
    checkpoints = TrainCheckpoints(directory)
    try:
      restored, _ = checkpoints.restore(1, abstract, TinyConfig())
      np.testing.assert_array_equal(restored["params"]["w"], state["params"]["w"])  # read means read right
      outcome = "ok"
    except (ValueError, FileNotFoundError) as e:
      outcome = str(e)
      assert not isinstance(e, LIBRARY_ERRORS), f"orbax {label} {damage}: a library's error leaked: {e!r}"
      assert f"{directory / '1'}:" in outcome, f"orbax {label} {damage}: does not name the checkpoint: {e!r}"
      assert len(outcome) < 2000, outcome
      outcome = outcome.replace(str(directory) + "/", "")
    finally:
      checkpoints.close()
    seen.append(1)
    return label, damage, outcome

  def damaged(rel, damage):
    def change(step_dir):
      path = step_dir / rel
      data = bytearray(path.read_bytes())
      if damage == "removed":
        path.unlink()
        return
      if damage == "one bit flipped":
        data[len(data) // 2] ^= 0x10
      path.write_bytes(bytes(data[:len(data) // 2] if damage == "truncated to half" else
                             b"" if damage == "emptied" else data))
    return change

  seen = []
  for rel in files:
    for damage in ORBAX_DAMAGES:
      yield restore(str(rel).split("/d/")[0] + ("/d/<data file>" if "/d/" in str(rel) else ""), damage,
                    damaged(rel, damage))
  for text in ('[]', '{"model_config": {"width": 3}}', '{"model_config": [], "arrays": {}}'):
    yield restore("meta/metadata", f"JSON {text}", lambda d, text=text: (d / "meta" / "metadata").write_text(text))


def test_damaged_orbax_checkpoint_is_one_clear_error(tmp_path):
  outcomes = list(orbax_damage_outcomes(tmp_path))
  assert len(outcomes) >= 4 * len(ORBAX_DAMAGES) + 3
  for label, damage, outcome in outcomes:  # every file orbax needs: damage is an error (or, for a
    if damage != "one bit flipped":        # JSON bit flip, at worst a key mismatch), never silent
      assert outcome != "ok", (label, damage)


def census(tmp_root: pathlib.Path, samples: int = 200, seed: int = 0) -> list[dict]:
  """Outcome counts per reader and kind of damage (for the README's table): `python -m
  tests.test_corrupt` prints them. Kinds: every truncation point (up to `samples`, evenly spaced),
  `samples` random 1-3 bit flips, and for JSON formats `samples` random wrong-type/missing/huge-value
  edits. Each outcome is "read" (the damaged file is still valid), "error+where" (the error names
  the file and a line, row, byte or key) or "error" (names the file only); anything else raises."""
  import random
  import re

  rng = random.Random(seed)
  where = re.compile(r":\d+:|line \d+|row \d+|byte \d+|item \d+|key |field |tensor |\[\d+\]")
  rows = []
  for name, (_, make, _, layout) in READERS.items():
    valid = make()
    cuts = sorted({int(x) for x in np.linspace(0, len(valid) - 1, min(samples, len(valid)))})
    damaged = {"truncated": [valid[:c] for c in cuts], "bit flips": []}
    for _ in range(samples):
      data = bytearray(valid)
      for _ in range(rng.randint(1, 3)):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
      damaged["bit flips"].append(bytes(data))
    if layout:
      edits = []
      for _ in range(samples):
        text = valid.decode()
        docs = [json.loads(x) for x in text.splitlines()] if layout == "lines" else [json.loads(text)]
        target = rng.randrange(len(docs))
        path = rng.choice(list(_paths(docs[target])))
        value = rng.choice([None, True, -1, 0, 10 ** 400, -10 ** 400, 1e308, "x", "", [], [None], {}, {"a": 1}])
        docs[target] = _mutate(docs[target], path, value, bool(path) and rng.random() < 0.5)
        text = "".join(json.dumps(d) + "\n" for d in docs) if layout == "lines" else json.dumps(docs[0])
        edits.append(text.encode())
      damaged["wrong type / missing / huge"] = edits
    for kind, files in damaged.items():
      counts = {"read": 0, "error+where": 0, "error": 0}
      example = ""
      for i, data in enumerate(files):
        directory = tmp_root / f"{len(rows)}_{i}"
        message = check_reader(name, _write(directory, name, data))
        if message == "ok":
          counts["read"] += 1
        else:
          counts["error+where" if where.search(message.replace(str(directory), "")) else "error"] += 1
          example = example or message.replace(str(directory) + "/", "")
      rows.append({"reader": name, "damage": kind, "tried": len(files), **counts, "example": example[:110]})
  counts = {}
  for label, damage, outcome in orbax_damage_outcomes(tmp_root / "orbax"):
    row = counts.setdefault(damage,
                            {"reader": "orbax checkpoint", "damage": damage, "tried": 0, "read": 0,
                             "error+where": 0, "error": 0, "example": ""})
    row["tried"] += 1
    if outcome == "ok":
      row["read"] += 1
    else:
      row["error+where" if re.search(r"its (meta|state) item|key '", outcome) else "error"] += 1
      row["example"] = row["example"] or outcome[:110]
  return rows + list(counts.values())


if __name__ == "__main__":
  import tempfile

  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    table = census(pathlib.Path(tempfile.mkdtemp(prefix="census-")))
  print("| reader | damage | tried | still valid | error naming file + line/key | error naming file | example |")
  print("|---|---|---:|---:|---:|---:|---|")
  for r in table:
    example = r["example"].replace("|", "\\|").replace("\n", " ")
    print(f"| {r['reader']} | {r['damage']} | {r['tried']} | {r['read']} | {r['error+where']} | {r['error']} "
          f"| {example} |")
