"""BOS and EOS exactly as each tokenizer does it: a BOS only where the tokenizer's own post-processor /
`add_bos_token` adds one (what transformers' `tokenizer(text)` gives), generation stopping at every
stop id (EOS, generation config, the chat template's end of turn), lm-eval's context encoding for
scores, training batches and prompt tables; the export keeps special ids, integer config fields and
the tokenizer files."""

import dataclasses
import json

import numpy as np
import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from sandbox_jax.data.batching import encode_sequence
from sandbox_jax.inference import InferenceEngine
from sandbox_jax.model import HFTokenizer, export_hf_checkpoint, load_hf_checkpoint
from sandbox_jax.protocol.prompts import PromptTables
from sandbox_jax.protocol.templates import templates_from_config

SPECIALS = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]  # ids 0..4; configs say bos 1, eos 2
CHAT = ("{% for m in messages %}{{'<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n'}}{% endfor %}"
        "{% if add_generation_prompt %}{{'<|im_start|>assistant\n'}}{% endif %}")
TEXTS = ["how can I help my neighbour today", "it is wrong to steal", " a leading space", "Is it okay? 123",
         "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", "ça dépend", "steal steal help"]
# style → (post-processor adds <s>, tokenizer_config.json); like Llama-2, GPT-2 (declares a BOS it never
# adds), Qwen2 (no BOS token at all)
STYLES = {"llama": (True, {"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": True}),
          "gpt2": (False, {"bos_token": "<s>", "eos_token": "</s>"}),
          "qwen2": (False, {"bos_token": None, "eos_token": "</s>", "pad_token": "</s>", "unk_token": "<unk>",
                            "chat_template": CHAT})}


def write_tokenizer(directory, style: str):
  tok = Tokenizer(models.BPE(unk_token="<unk>"))
  tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tok.decoder = decoders.ByteLevel()
  trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=SPECIALS, show_progress=False,
                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
  tok.train_from_iterator([t for t in TEXTS if "<" not in t] * 20, trainer)
  adds, config = STYLES[style]
  if style == "qwen2":  # as Qwen2's tokenizer.json splits (transformers rebuilds it so for a qwen2 model)
    from tokenizers import Regex
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
  tok.post_processor = (processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                      special_tokens=[("<s>", 1)])
                        if adds else processors.ByteLevel(trim_offsets=False))
  tok.save(str(directory / "tokenizer.json"))
  (directory / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "PreTrainedTokenizerFast",
                                                               **config}))
  return directory


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
  """style → a tiny HF checkpoint (peaky random weights) with that style's tokenizer."""
  from tests import hf_fixtures

  kinds = {"llama": "llama_gen", "gpt2": "gpt2_gen", "qwen2": "qwen2_gen"}
  return {style: write_tokenizer(hf_fixtures.write_tiny_checkpoint(kind, tmp_path_factory.mktemp(style)), style)
          for style, kind in kinds.items()}


def _transformers(directory):
  import torch
  import transformers as tf

  from tests.gguf_fixtures import one_torch_thread

  one_torch_thread()
  return (tf.AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32).eval(),
          tf.AutoTokenizer.from_pretrained(directory))


@pytest.mark.parametrize("style", list(STYLES))
def test_bos_as_transformers_tokenizer_adds_it(style, checkpoints):
  _, reference = _transformers(checkpoints[style])
  tok = HFTokenizer(checkpoints[style])
  assert tok.adds_bos == STYLES[style][0]
  for text in TEXTS:
    assert ([tok.bos_id] if tok.adds_bos else []) + tok.encode(text) == reference(text).input_ids, text


@pytest.mark.parametrize("style", list(STYLES))
def test_default_engine_greedy_from_text_equals_transformers(style, checkpoints):
  import torch

  model, reference = _transformers(checkpoints[style])
  prompts = TEXTS[:4]
  reference.padding_side = "left"
  reference.pad_token = reference.pad_token or "</s>"
  batch = reference(prompts, return_tensors="pt", padding=True)
  with torch.no_grad():
    out = model.generate(**batch, max_new_tokens=16, do_sample=False, eos_token_id=2,
                         pad_token_id=reference.pad_token_id)[:, batch.input_ids.shape[1]:].tolist()
  expected = [row[:row.index(2)] if 2 in row else row for row in out]
  ours = InferenceEngine(load_hf_checkpoint(checkpoints[style]), HFTokenizer(checkpoints[style])).generate(prompts, 16)
  assert [r.tokens for r in ours] == expected
  assert sum(len(r) for r in expected) >= 16 * 2


@dataclasses.dataclass
class StopTokenizer:
  """Ids in, ids out, with a chosen set of stop ids."""

  stop_ids: tuple
  name: str = "ids"
  vocab_size: int = 320
  eos_id: int = 2
  pad_id: int = 0
  bos_id: int | None = None
  adds_bos: bool = False

  def encode(self, text):
    return [int(t) for t in text.split()]

  def decode(self, ids):
    return " ".join(str(int(i)) for i in ids)


def test_generation_stops_at_any_stop_id(checkpoints):
  import torch

  model, _ = _transformers(checkpoints["gpt2"])
  prompts = [[5, 17, 33, 80], [99, 12, 7, 250, 31, 6]]
  ids = torch.tensor(prompts[0])[None]
  with torch.no_grad():
    free = model.generate(ids, max_new_tokens=12, do_sample=False, eos_token_id=None, pad_token_id=0)[0, 4:].tolist()
  stop = free[5]  # a token the model does emit: a second stop id cuts row 0 there
  engine = InferenceEngine(load_hf_checkpoint(checkpoints["gpt2"]), StopTokenizer(stop_ids=(2, stop)))
  for prompt, result in zip(prompts, engine.generate([" ".join(map(str, p)) for p in prompts], 12)):
    with torch.no_grad():
      row = model.generate(torch.tensor(prompt)[None], max_new_tokens=12, do_sample=False, eos_token_id=[2, stop],
                           pad_token_id=0)[0, len(prompt):].tolist()
    cut = min([row.index(s) for s in (2, stop) if s in row], default=len(row))
    assert result.tokens == row[:cut] and result.ended_with_eos == (cut < len(row))
  assert engine.generate([" ".join(map(str, prompts[0]))], 12)[0].tokens == free[:free.index(stop)]


def test_stop_ids_from_generation_config_and_chat_template(checkpoints, tmp_path):
  tok = HFTokenizer(checkpoints["qwen2"])
  assert tok.bos_id == 1 and not tok.adds_bos  # config.json names a BOS the tokenizer never adds
  assert tok.stop_ids == (2, 4)  # EOS, and <|im_end|> that the chat template ends turns with
  (checkpoints["gpt2"] / "generation_config.json").write_text(json.dumps({"eos_token_id": [2, 3]}))
  try:
    assert HFTokenizer(checkpoints["gpt2"]).stop_ids == (2, 3)
  finally:
    (checkpoints["gpt2"] / "generation_config.json").unlink()


def _lm_eval_encode_pair(tokenizer, context: str, continuation: str):
  """lm-evaluation-harness HFLM._encode_pair with its default add_bos_token=False."""
  n_spaces = len(context) - len(context.rstrip())
  if n_spaces > 0:
    continuation, context = context[-n_spaces:] + continuation, context[:-n_spaces]
  whole = tokenizer.encode(context + continuation, add_special_tokens=False)
  context_enc = tokenizer.encode(context, add_special_tokens=False)
  return context_enc, whole[len(context_enc):]


@pytest.mark.parametrize("style", ["gpt2", "qwen2"])
def test_multiple_choice_scores_use_lm_eval_context_encoding(style, checkpoints):
  import torch

  model, reference = _transformers(checkpoints[style])
  contexts = ["it is wrong to", "how can I help my", "Is it okay?"]
  choices = [" steal", " neighbour", " 123"]
  expected = []
  for context, choice in zip(contexts, choices):
    ctx, cont = _lm_eval_encode_pair(reference, context, choice)
    with torch.no_grad():
      logp = torch.log_softmax(model(torch.tensor([ctx + cont])).logits[0].double(), -1).numpy()
    expected.append(sum(logp[len(ctx) - 1 + i, t] for i, t in enumerate(cont)))
  engine = InferenceEngine(load_hf_checkpoint(checkpoints[style]), HFTokenizer(checkpoints[style]))
  ours = [r.logprob for r in engine.score(contexts, choices)]
  np.testing.assert_allclose(ours, expected, atol=2e-4, rtol=0)


def test_training_batches_and_prompt_tables_follow_the_tokenizer(checkpoints):
  no_bos, with_bos = HFTokenizer(checkpoints["gpt2"]), HFTokenizer(checkpoints["llama"])
  prompt = no_bos.encode("how can I")
  seq, prefix = encode_sequence(no_bos, prompt, " help", max_len=64)
  assert seq == prompt + no_bos.encode(" help") + [2] and prefix == len(prompt)
  seq, prefix = encode_sequence(with_bos, prompt, " help", max_len=64)
  assert seq[0] == 1 and prefix == len(prompt) + 1
  templates = templates_from_config("compact")
  assert PromptTables.build(templates, no_bos, 4, add_bos=True).bos == ()
  assert PromptTables.build(templates, with_bos, 4, add_bos=True).bos == (1,)


def test_export_keeps_special_ids_tokenizer_and_generations(checkpoints, tmp_path):
  import torch
  import transformers as tf

  source = checkpoints["qwen2"]
  config = json.loads((source / "config.json").read_text())
  config.update(bos_token_id=3, eos_token_id=4, pad_token_id=0)  # none of transformers' defaults
  (source / "config.json").write_text(json.dumps(config))
  try:
    tok = HFTokenizer(source)
    out = export_hf_checkpoint(load_hf_checkpoint(source), tmp_path / "out", tokenizer=tok)
    exported = json.loads((out / "config.json").read_text())
    assert (exported["bos_token_id"], exported["eos_token_id"], exported["pad_token_id"]) == (3, 4, 0)
    (model, reference), (reloaded, reloaded_tok) = _transformers(source), _transformers(out)
    assert reloaded_tok.chat_template == CHAT
    for text in TEXTS:
      assert reloaded_tok(text).input_ids == reference(text).input_ids
    ids = torch.tensor([reference(TEXTS[0]).input_ids])
    with torch.no_grad():
      expected = model.generate(ids, max_new_tokens=12, do_sample=False)
      assert torch.equal(reloaded.generate(ids, max_new_tokens=12, do_sample=False), expected)
  finally:
    config.update(bos_token_id=1, eos_token_id=2)
    config.pop("pad_token_id")
    (source / "config.json").write_text(json.dumps(config))


def test_export_writes_integer_rope_fields(hf_checkpoint_factory, tmp_path):
  out = export_hf_checkpoint(load_hf_checkpoint(hf_checkpoint_factory("llama3_scaled")), tmp_path / "out")
  rope = json.loads((out / "config.json").read_text())["rope_parameters"]
  assert rope["original_max_position_embeddings"] == 32 and isinstance(rope["original_max_position_embeddings"], int)
