"""Observer calibration (pipeline/calibrate.py): rating opening, pairwise accuracy, chat-formatted
observer prompts, and the cached pipeline stage with its `observer.checkpoint` override."""

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from sandbox_jax.data.seed_corpus import load_seed_corpus
from sandbox_jax.model import ByteTokenizer, create_model, model_config_from_dict
from sandbox_jax.pipeline.calibrate import (calibration_groups, observer_candidates, observer_prompt_template,
                                            observer_stage, pairwise_accuracy)
from sandbox_jax.protocol.chat import ChatFormat, rating_opening
from sandbox_jax.protocol.templates import compact_templates, render

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from configs.tiny import get_config  # noqa: E402

CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
          "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


class ChatByteTokenizer(ByteTokenizer):
  """The byte tokenizer with a ChatML chat template (what a checkpoint's tokenizer carries)."""
  chat_template = CHATML


class SpaceDigitTokenizer:
  """GPT-2 style: a space before a digit is part of the digit's token (' 5' is one token)."""
  name = "space-digit"

  def __init__(self):
    self.vocab = {}

  def encode(self, text):
    return [self.vocab.setdefault(piece, len(self.vocab)) for piece in re.findall(r" ?\d|\w+|\S| ", text)]


def test_rating_opening_makes_the_digit_the_next_token():
  # "Rating: " + "5": the digit is one more token
  assert rating_opening(ByteTokenizer()) == ("Rating: ", tuple("1234567"))
  # "Rating: 5" glues the space to the digit: open with "Rating:" and read " 1".." 7"
  tok = SpaceDigitTokenizer()
  opening, candidates = rating_opening(tok)
  assert (opening, candidates) == ("Rating:", tuple(" " + d for d in "1234567"))
  assert all(tok.encode(opening + c) == tok.encode(opening) + tok.encode(c) for c in candidates)
  templates = compact_templates()
  assert observer_candidates(templates, ChatFormat(CHATML), tok) == candidates  # what calibration reads and trains
  assert observer_candidates(templates, None, tok) == tuple(templates.rating_candidates)


def test_pairwise_accuracy_per_question_with_ties_half():
  expected = [5.0, 3.0, 4.0, 4.0, 2.0, 6.0, 1.0, 1.5]
  aligned = [True, True, False, False, True, True, False, False]
  question = [0, 0, 0, 0, 1, 1, 1, 1]
  # question 0: (5>4, 5>4, 3<4, 3<4) = 0.5; question 1: (2>1, 2>1.5, 6>1, 6>1.5) = 1.0
  assert pairwise_accuracy(expected, aligned, question) == pytest.approx(0.75)
  assert pairwise_accuracy([3, 3], [True, False], [0, 0]) == pytest.approx(0.5)  # a tie counts half
  assert pairwise_accuracy([1, 2, 9], [True, False, True], [0, 0, 1]) == 0.0    # question 1 has no pair
  with pytest.raises(ValueError, match="both an aligned and a misaligned"):
    pairwise_accuracy([1, 2], [True, True], [0, 0])


def test_observer_prompt_is_the_chat_with_the_opened_assistant_turn():
  templates = compact_templates()
  assert observer_prompt_template(templates, None, ByteTokenizer()) == templates.observer_alignment
  chat = ChatFormat(CHATML)
  template = observer_prompt_template(templates, chat, ChatByteTokenizer())
  values = {"query": "Is it fine?", "answer": "Yes."}
  user = render(templates.observer_alignment, values)[:-len("Rating:")]
  # no system prompt for the observer; the assistant turn opened with "Rating: "
  assert render(template, values) == chat.prompt(user, None, "Rating: ")
  assert render(template, values).endswith("<|im_start|>assistant\nRating: ")
  groups = calibration_groups(load_seed_corpus("train")[:3], template, answer_chars=40, reasons=True, seed=0)
  assert len(groups) == 3 * 4 * 2
  digits = [g for g in groups if len(g.responses[0]) == 1]
  assert len(digits) == 12 and all(g.responses[0] in "1234567" for g in digits)
  assert all(re.fullmatch(r"[1-7] ### Reason: .+", g.responses[0]) for g in groups if g not in digits)
  assert all(g.query.startswith("<|im_start|>user\n") and g.query.endswith("Rating: ") for g in groups)


def _config(tmp_path, **observer):
  config = get_config("runlocal")
  config.workdir = str(tmp_path / "run")
  config.observer = {**dict(steps=2, groups_per_batch=2, max_len=320, answer_chars=40, lr=1e-3), **observer}
  return config


@pytest.fixture(autouse=True)
def small_corpus(monkeypatch):
  """A few questions of each split keep the stage's training and held-out ratings to seconds."""
  import sandbox_jax.data.seed_corpus as seed_corpus

  real = seed_corpus.load_seed_corpus
  monkeypatch.setattr(seed_corpus, "load_seed_corpus", lambda split: real(split)[:6 if split == "train" else 3])


def _micro_model(config):
  return create_model(model_config_from_dict(config.model), seed=0)


@pytest.mark.parametrize("tokenizer", [ByteTokenizer(), ChatByteTokenizer()], ids=["plain", "chat"])
def test_observer_stage_calibrates_a_copy_and_is_cached(tmp_path, tokenizer):
  config = _config(tmp_path)
  workdir = Path(config.workdir)
  loaded = []

  def load(location):
    loaded.append(location)
    return _micro_model(config)

  model_dir, done = observer_stage(config, workdir, None, tokenizer, "start-model-dir", load)
  assert loaded == ["start-model-dir"]                        # a copy of the starting model
  assert Path(model_dir) == workdir / "observer" / "train" / "export" and (Path(model_dir) / "config.json").is_file()
  on_disk = json.loads((workdir / "observer" / "DONE.json").read_text())
  assert on_disk["steps"] == 2 and on_disk["source"] == "start-model-dir"
  for when in ("before", "after"):
    report = on_disk[when]
    assert report["heldout_answers"] == 12 and 0 <= report["pairwise_accuracy"] <= 1
    assert 1 <= report["aligned_mean_rating"] <= 7 and 1 <= report["misaligned_mean_rating"] <= 7
  assert on_disk["after"] != on_disk["before"]               # the trained copy rates differently
  chat = isinstance(tokenizer, ChatByteTokenizer)
  assert on_disk["chat"] is chat
  assert on_disk["template"].startswith("<|im_start|>user\n") is chat
  assert on_disk["template"].endswith("<|im_start|>assistant\nRating: " if chat else "Aligned? Rating:")

  def must_not_load(location):
    raise AssertionError("a finished observer stage must not load or train again")

  again_dir, again = observer_stage(config, workdir, None, tokenizer, "start-model-dir", must_not_load)
  assert again_dir == model_dir and again == on_disk


def test_observer_checkpoint_override(tmp_path):
  tokenizer = ByteTokenizer()
  no_section = get_config("runlocal")
  assert observer_stage(no_section, tmp_path, None, tokenizer, "start", None) == ("start", None)

  own = tmp_path / "my_observer"
  own.mkdir()
  as_is = _config(tmp_path, checkpoint=str(own), calibrate=False)
  assert observer_stage(as_is, tmp_path, None, tokenizer, "start", None) == (str(own), None)
  assert not (tmp_path / "observer").exists()

  missing = _config(tmp_path, checkpoint=str(tmp_path / "nowhere"), calibrate=False)
  with pytest.raises(FileNotFoundError, match="observer.checkpoint"):
    observer_stage(missing, tmp_path, None, tokenizer, "start", None)

  unknown = _config(tmp_path, calibrated=True)
  with pytest.raises(ValueError, match="observer: unknown keys"):
    observer_stage(unknown, tmp_path, None, tokenizer, "start", None)

  calibrated = _config(tmp_path, checkpoint=str(own), steps=1)
  loaded = []
  config = calibrated

  def load(location):
    loaded.append(location)
    return _micro_model(config)

  model_dir, done = observer_stage(calibrated, Path(calibrated.workdir), None, tokenizer, "start", load)
  assert loaded == [str(own)] and done["source"] == str(own) and done["steps"] == 1
  assert np.isfinite(done["after"]["pairwise_accuracy"])
