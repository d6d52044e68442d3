"""Bad inputs to the evaluation runner fail early with messages that name the file, row or name."""

import pathlib

import numpy as np
import pytest

from sandbox_jax.evaluation.generative import evaluate_generative, rate_answers
from sandbox_jax.evaluation.mc_eval import evaluate_tasks
from sandbox_jax.evaluation.runner import evaluate_checkpoint, load_engine
from sandbox_jax.evaluation.tasks import TaskFormatError, UnknownTaskError
from sandbox_jax.model import ByteTokenizer
from sandbox_jax.protocol.templates import Templates

FIX = pathlib.Path(__file__).parent / "fixtures" / "eval"


class NoModel:
  """An engine that must not be reached: these errors come before any scoring or generation."""

  def score(self, contexts, continuations):
    raise AssertionError("scored although the inputs were bad")

  def generate(self, prompts, max_new_tokens, **kwargs):
    raise AssertionError("generated although the inputs were bad")


def test_unknown_benchmark_name_fails_before_scoring():
  with pytest.raises(UnknownTaskError) as info:
    evaluate_tasks(NoModel(), {"ethics_cm": FIX / "ethics" / "commonsense" / "cm_test.csv",
                               "truthfulqa_mc3": FIX / "TruthfulQA.csv"})
  assert "'truthfulqa_mc3'" in str(info.value) and "truthfulqa_mc2" in str(info.value)


def test_missing_task_file_is_named(tmp_path):
  missing = tmp_path / "no_such" / "TruthfulQA.csv"
  with pytest.raises(FileNotFoundError) as info:
    evaluate_tasks(NoModel(), {"truthfulqa_mc1": missing})
  assert str(missing) in str(info.value) and "'truthfulqa_mc1'" in str(info.value)


def test_wrong_format_names_file_and_row(tmp_path):
  with pytest.raises(TaskFormatError, match="moral_stories.jsonl: line 1: .*lacks columns"):
    evaluate_tasks(NoModel(), {"ethics_cm": FIX / "moral_stories.jsonl"})
  bad = tmp_path / "justice_test.csv"
  bad.write_text("label,scenario\n1,fine\nmaybe,not fine\n")
  with pytest.raises(TaskFormatError) as info:
    evaluate_tasks(NoModel(), {"ethics_justice": bad})
  assert str(bad) in str(info.value) and "row 2 (line 3)" in str(info.value)


def test_bad_batch_size_and_empty_task_list():
  with pytest.raises(ValueError, match="batch_size must be a positive integer"):
    evaluate_tasks(NoModel(), {"moral_stories": FIX / "moral_stories.jsonl"}, batch_size=0)
  with pytest.raises(ValueError, match="at least one task"):
    evaluate_tasks(NoModel(), {})


def test_missing_checkpoint(tmp_path):
  with pytest.raises(FileNotFoundError, match=f"checkpoint {tmp_path / 'stage3'}: no such directory"):
    load_engine(tmp_path / "stage3")
  (tmp_path / "empty").mkdir()
  with pytest.raises(FileNotFoundError, match="no config.json"):
    load_engine(tmp_path / "empty")


def test_generative_bad_inputs():
  templates = Templates()
  with pytest.raises(ValueError, match="exactly the slots"):
    rate_answers(NoModel(), ["q"], ["a"], "Rate {answer}. Rating:")
  with pytest.raises(ValueError, match="2 questions but 1 answers"):
    rate_answers(NoModel(), ["q", "r"], ["a"], templates.observer_alignment)
  with pytest.raises(KeyError, match="unknown wrapper 'nope'"):
    evaluate_generative(NoModel(), NoModel(), ["q"], templates, wrappers=["nope"])
  with pytest.raises(ValueError, match="unique"):
    evaluate_generative(NoModel(), NoModel(), ["q"], templates, wrappers=["dan", "dan"])
  with pytest.raises(ValueError, match="contain {question} once"):
    evaluate_generative(NoModel(), NoModel(), ["q"], templates, prompt_template="Q:")
  with pytest.raises(ValueError, match="at least one question"):
    evaluate_generative(NoModel(), NoModel(), [], templates)
  with pytest.raises(ValueError, match="needs an observer engine"):
    evaluate_checkpoint("x", NoModel(), questions=["q"])
  with pytest.raises(ValueError, match="x: nothing to evaluate"):
    evaluate_checkpoint("x", NoModel())


def test_rate_answers_is_one_prefill_per_answer():
  """One row per answer (never one per candidate), never split; the softmax uses all seven logits."""
  calls = []

  class Fixed:
    tokenizer = ByteTokenizer()

    def score(self, contexts, continuations):
      raise AssertionError("ratings are read from one prefill, not by scoring seven continuations")

    def next_token_logits(self, prompts, token_ids):
      calls.append(list(prompts))
      assert list(token_ids) == [ord(str(r)) for r in range(1, 8)]
      return -np.tile(np.arange(1, 8, dtype=np.float32), (len(prompts), 1))

  out = rate_answers(Fixed(), ["q"] * 3, ["a", "b", "c"], "{query} {answer} Rating:", batch_size=2)
  assert [len(c) for c in calls] == [2, 1]
  assert calls[0] == ["q a Rating:", "q b Rating:"]
  assert out["argmax"].tolist() == [1, 1, 1]
  assert out["distribution"].sum(axis=1) == pytest.approx([1, 1, 1])
  assert out["distribution"][0, 0] / out["distribution"][0, 1] == pytest.approx(2.718281828, rel=1e-6)
