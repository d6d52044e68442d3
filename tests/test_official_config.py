"""The official preset's switches, wired: config keys, the round's rater plan, the eviction check, the
records config through the stages, and `train.append_eos` through the trainer's data path."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import ml_collections
import numpy as np
import pytest

from configs import qwen2_5_0_5b, tiny
from sandbox_jax import data
from sandbox_jax.data import records as rec
from sandbox_jax.model import ByteTokenizer
from sandbox_jax.pipeline.records import build_records, read_groups
from sandbox_jax.pipeline.simulate import run_simulation, society_config
from sandbox_jax.protocol.templates import official_templates, render_prompt
from sandbox_jax.society import SocietyConfig, SocietyRound
from sandbox_jax.society.world import draw_raters, neighbour_matrix
from sandbox_jax.training.config import TrainConfig
from sandbox_jax.training.feeding import BatchFeeder
from sandbox_jax.training.dataset import Stage
from sandbox_jax.training.reference import data_fingerprint, load_or_compute_reference
from tests.test_official_records import TRANSCRIPT

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("config", [tiny.get_config("official"), tiny.get_config("official,runlocal"),
                                    qwen2_5_0_5b.get_config("path=/nowhere,official"),
                                    qwen2_5_0_5b.get_config("path=/nowhere,official,runlocal")])
def test_the_preset_sets_every_switch(config):
  s = config.society
  assert (s.protocol, s.templates, s.global_local_share, s.max_raters) == ("official", "official", "neighbours", 4)
  assert (s.memory_seed_count, s.store_only_new, s.retrieval, s.retrieval_threshold) == (50, True, "nearest", 0.3)
  assert s.memory_capacity == 50 + s.rounds
  assert s.temperature == s.observer_temperature == 1.0 and s.answer_tokens == s.reason_tokens == 256
  assert config.records.to_dict() == rec.OFFICIAL_RECORDS and config.train.append_eos is False
  cfg = society_config(s)   # every key is a SocietyConfig field
  assert cfg.global_local_share == "neighbours" and cfg.protocol == "official"
  assert not TrainConfig.from_dict(config.train).append_eos


def test_default_configs_keep_the_project_defaults():
  config = tiny.get_config("runlocal")
  assert "records" not in config and "append_eos" not in config.train
  assert "global_local_share" not in config.society and society_config(config.society).global_local_share == "k"


@pytest.mark.parametrize("arg,k", [("official", 4), ("official,runlocal", 2)])
def test_tiny_official_prompts_fit_uncut(arg, k):
  config = tiny.get_config(arg)
  s, t, tok = config.society, official_templates(), ByteTokenizer()
  q, a = "q" * s.question_tokens, "a" * s.answer_tokens
  memory = {"prev_q": q, "prev_a": a}
  longest = {
      "draft_prompt_tokens": render_prompt(t, "draft", {"id": "99", "query": q}, memory),
      "feedback_prompt_tokens": render_prompt(t, "feedback", {"rater_id": "99", "author_id": "99", "query": q,
                                                              "draft": a}, memory),
      "revise_prompt_tokens": render_prompt(t, "revise", {"avg": "5.333333333333333", "draft": a, "query": q,
                                                          "reasons": ["r" * s.reason_tokens] * k}),
      "observer_prompt_tokens": render_prompt(t, "observer_alignment", {"query": q, "answer": a})}
  for key, text in longest.items():
    need = 1 + len(tok.encode(text))
    assert need <= s[key], (key, need)
    assert s[key] + max(s.answer_tokens, s.reason_tokens) <= config.model.max_positions


def test_global_local_share_is_a_checked_config_key():
  with pytest.raises(ValueError, match="society.global_local_share"):
    SocietyConfig(global_local_share="all")


def test_the_round_draws_with_the_configured_local_share():
  tok = ByteTokenizer()
  official = SocietyRound(SocietyConfig(max_raters=16, global_dropout=0.8, global_local_share="neighbours"), tok)
  neighbours = neighbour_matrix(10)
  counts = neighbours.sum(1)
  want = [max(1, int((1 - 0.8) * int(c))) for c in counts]   # World.back_scatter: int(4.999..) = 4
  assert official.local_per_agent.tolist() == want and official.k_per_agent.tolist() == [16] * 100
  raters, valid = map(np.asarray, official.draw_raters(jax.random.key(0)))
  world_key = jax.random.split(jax.random.key(0), 1)[0]     # the round draws each world with its own key
  direct = draw_raters(world_key, neighbours, official.k_per_agent, 0.8, local_A=np.asarray(want))
  assert np.array_equal(raters, np.asarray(direct[0])) and valid.all()
  for agent in (0, 44):
    assert neighbours[agent, raters[agent, :want[agent]]].all()
  assert (want[0], want[44]) == (4, 15)
  project = SocietyRound(SocietyConfig(max_raters=16, global_dropout=0.8), tok)
  assert project.local_per_agent.tolist() == [3] * 100      # int(0.2 * 16) of k = 16
  with pytest.raises(ValueError, match="society.global_dropout / society.max_raters"):
    SocietyRound(SocietyConfig(max_raters=4, global_dropout=0.5, global_local_share="neighbours"), tok)


def test_local_only_draws_are_unchanged_by_the_plan():
  round_ = SocietyRound(SocietyConfig(grid_size=3, global_local_share="neighbours"), ByteTokenizer())
  raters, valid = map(np.asarray, round_.draw_raters(jax.random.key(5)))
  want, want_valid = draw_raters(jax.random.split(jax.random.key(5), 1)[0], neighbour_matrix(3),
                                 round_.k_per_agent)
  assert np.array_equal(raters, np.asarray(want)) and np.array_equal(valid, np.asarray(want_valid))


def test_official_simulate_refuses_a_memory_that_could_evict():
  section = ml_collections.ConfigDict(dict(protocol="official", memory_seed_count=50, memory_capacity=64,
                                           rounds=20, questions="seed:train"))
  with pytest.raises(ValueError, match="society.memory_capacity: 64 .* at least 70"):
    run_simulation(section, None, None, ByteTokenizer(), "/nonexistent", 0, ("a", "b"))


@pytest.mark.parametrize("config", [None, rec.OFFICIAL_RECORDS, dict(dedupe="none"),
                                    dict(rec.OFFICIAL_RECORDS, dedupe="none", self_critic_ratio=None,
                                         realignment_ratio=None)])
def test_regrouped_records_are_the_released_groups(tmp_path, config):
  transcript = tmp_path / "transcript.jsonl"
  data.write_transcripts(transcript, TRANSCRIPT + TRANSCRIPT[:1])   # a repeated row: duplicate responses
  build_records(transcript, tmp_path / "out", config)
  released = data.read_sandbox_v1(tmp_path / "out" / "sandbox_v1.json")
  regrouped = read_groups(tmp_path / "out" / "records.jsonl", config)
  summary = lambda groups: [(g.type, g.query, g.responses, g.scores) for g in groups]
  assert summary(regrouped) == summary(released)
  assert summary(released) == summary(rec.select_groups(TRANSCRIPT + TRANSCRIPT[:1], config).groups)


def test_the_records_command_takes_the_config_section(tmp_path):
  transcript = tmp_path / "transcript.jsonl"
  data.write_transcripts(transcript, TRANSCRIPT)
  env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
  out = {}
  for arg in ("runlocal", "official,runlocal"):
    subprocess.run([sys.executable, "-m", "sandbox_jax.main", "records", f"--config={ROOT}/configs/tiny.py:{arg}",
                    f"--transcript={transcript}", f"--out={tmp_path / arg}"], check=True, env=env, cwd=tmp_path,
                   capture_output=True)
    out[arg] = data.read_sandbox_v1(tmp_path / arg / "sandbox_v1.json")
  assert out["runlocal"] == rec.select_groups(TRANSCRIPT).groups
  official = rec.select_groups(TRANSCRIPT, rec.OFFICIAL_RECORDS).groups
  assert [(g.type, g.query) for g in out["official,runlocal"]] == [(g.type, g.query) for g in official]
  # the documented difference on this transcript: the official ratios keep only imitation groups,
  # sorted by prompt; the default keeps self-critic and realignment groups in transcript order
  assert {g.type for g in out["official,runlocal"]} == {"imitation"}
  assert {g.type for g in out["runlocal"]} == {"imitation", "self_critic", "realignment"}


GROUPS = [data.Group(query=f"Q{i}:", responses=("ab", "c"), scores=(5.0, 3.0), models=("m", "m")) for i in range(4)]


@pytest.mark.parametrize("append_eos", [True, False])
def test_append_eos_reaches_the_trainers_batches(append_eos):
  tok = ByteTokenizer()
  cfg = TrainConfig(groups_per_batch=2, max_responses=2, max_len=16, append_eos=append_eos)
  feeder = BatchFeeder(cfg, [Stage("imitation", GROUPS, 2)], tok, None, None)
  batch, _ = feeder.next(0)
  tokens, mask = np.asarray(batch.tokens_GxRxT), np.asarray(batch.input_mask_GxRxT)
  assert tokens.shape == (1, 2, 2, 16)   # (micro-batches, G, R, T)
  last = tokens[0, 0, 0, mask[0, 0, 0].sum() - 1]
  assert (last == tok.eos_id) == append_eos
  assert ((tokens == tok.eos_id) & mask).any() == append_eos
  iterator = data.GroupBatchIterator(GROUPS, tok, groups_per_batch=2, max_len=16, max_responses=2,
                                     append_eos=append_eos)
  assert ((next(iterator).tokens_GxRxT == tok.eos_id) & next(iterator).input_mask_GxRxT).any() == append_eos


def test_a_resumed_dpo_run_with_another_append_eos_is_refused(tmp_path):
  tok = ByteTokenizer()
  assert data_fingerprint(GROUPS, tok, 16) != data_fingerprint(GROUPS, tok, 16, append_eos=False)
  path = tmp_path / "dpo_reference.json"
  path.write_text(json.dumps({"data": data_fingerprint(GROUPS, tok, 16), "model": "m", "logp": {}}))
  assert load_or_compute_reference(path, False, None, tok, GROUPS, 16) == {}
  with pytest.raises(ValueError, match="train.append_eos"):
    load_or_compute_reference(path, False, None, tok, GROUPS, 16, append_eos=False)
