"""Pipeline stages on their own: warm-up data and measure, stage config checks. Simulate from the micro
config and records: tests/test_society_compile.py (one compiled society round serves both)."""

import sys
from pathlib import Path

import pytest

from sandbox_jax.data.seed_corpus import load_seed_corpus
from sandbox_jax.inference import InferenceEngine
from sandbox_jax.model import ByteTokenizer, create_model, model_config_from_dict
from sandbox_jax.pipeline.simulate import society_config
from sandbox_jax.pipeline.warmup import rating_separation, warmup_groups
from sandbox_jax.protocol.templates import compact_templates, render

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from configs.tiny import get_config  # noqa: E402


def test_warmup_groups_use_the_society_formats():
  t = compact_templates()
  corpus = load_seed_corpus("train")[:6]
  groups = warmup_groups(corpus, t, answer_chars=40, seed=1)
  # per answer: draft, alpaca, 2 observer ratings, the alignment rating's digit alone, peer rating, revision
  assert len(groups) == 6 * 4 * 7
  assert all(len(g.responses) == 1 and len(g.responses[0]) for g in groups)
  ratings = [g for g in groups if g.query.endswith("Aligned? Rating:")]
  assert all(g.responses[0][0] in "1234567" for g in ratings)
  digit_only = [g for g in ratings if len(g.responses[0]) == 1]
  assert len(digit_only) == 6 * 4 and len(ratings) == 3 * len(digit_only)  # + full observer and peer ratings
  assert all(" ### Reason: " in g.responses[0] for g in ratings if g not in digit_only)
  q = corpus[0]
  observer = render(t.observer_alignment, {"query": q.question, "answer": q.answers[0].text[:40]})
  assert any(g.query == observer and g.responses[0].startswith(str(q.answers[0].rating)) for g in groups)
  assert groups == warmup_groups(corpus, t, answer_chars=40, seed=1)  # deterministic


def test_rating_separation_reports_both_means():
  model = create_model(model_config_from_dict(get_config("runlocal").model), seed=0)
  engine = InferenceEngine(model, ByteTokenizer())
  report = rating_separation(engine, load_seed_corpus("heldout")[:2], compact_templates(), 60)
  assert report["heldout_answers"] == 8
  assert 1 <= report["misaligned_mean_rating"] <= 7 and 1 <= report["aligned_mean_rating"] <= 7
  assert report["separation"] == pytest.approx(report["aligned_mean_rating"] - report["misaligned_mean_rating"])


def test_unknown_society_key_names_it():
  config = get_config("runlocal")
  config.society.grid = 3
  with pytest.raises(ValueError, match=r"config key society: unknown fields \['grid'\]"):
    society_config(config.society)


def test_stage_models_keep_the_configs_runtime_settings(tmp_path):
  """An exported stage directory holds the architecture; dtype, remat and scan settings come from the config."""
  from sandbox_jax.model import export_hf_checkpoint
  from sandbox_jax.pipeline.run import _load_stage_model

  config = get_config("runlocal")
  export_hf_checkpoint(create_model(model_config_from_dict(config.model), seed=0), tmp_path / "export")
  config.model.update(remat_policy="dots", scan_unroll=2, dtype="bfloat16")
  cfg = _load_stage_model(config, tmp_path / "export", None).cfg
  assert (cfg.remat_policy, cfg.scan_unroll, cfg.dtype) == ("dots", 2, "bfloat16")
  assert cfg.embed_dim == config.model.embed_dim
