"""Corrupt and truncated inputs (property-based): every reader below, given its valid file cut at any
byte, with a bit flipped, emptied, or (JSON formats) with a value replaced by a wrong type, a huge
number or removed, either reads it or raises ONE clear error: a ValueError (or FileNotFoundError)
whose message names the file (and line / row / key where there is one). Never an exception from
inside a library (UnicodeDecodeError, JSONDecodeError, KeyError, OverflowError, SafetensorError...),
never a hang (each example has a deadline).

Readers: transcript files and the runner's round files, question files (text and JSONL), the
benchmark task files (hhh_alignment task.json, TruthfulQA.csv, the five ETHICS CSVs, moral_stories
JSONL, HH-RLHF JSONL.gz), config files (the command line's `--config`), safetensors checkpoints.
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
}


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


def census(tmp_root: pathlib.Path, samples: int = 200, seed: int = 0) -> list[dict]:
  """Outcome counts per reader and kind of damage (for the README's table): `python -m
  tests.test_corrupt` prints them. Kinds: every truncation point (up to `samples`, evenly spaced),
  `samples` random 1-3 bit flips, and for JSON formats `samples` random wrong-type/missing/huge-value
  edits. Each outcome is "read" (the damaged file is still valid), "error+where" (the error names
  the file and a line, row, byte or key) or "error" (names the file only); anything else raises."""
  import random
  import re

  rng = random.Random(seed)
  where = re.compile(r":\d+:|line \d+|row \d+|byte \d+|key |field |tensor |\[\d+\]")
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
  return rows


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
