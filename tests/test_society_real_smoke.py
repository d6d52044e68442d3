"""Smoke test of benchmarks/society_real.py on a tiny random GGUF (so the script cannot rot): the
batched round (a) and the transformers port (b) run end to end on 4 agents; (c) llama.cpp and
(d) ours agent by agent are skipped to keep it short (d is benchmarks/society.py's loop). No speed
is asserted."""

import re
import sys
from pathlib import Path

import pytest

from tests.gguf_fixtures import write_tiny_gguf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@pytest.mark.slow
def test_society_real_runs_on_a_tiny_gguf(tmp_path, monkeypatch, capsys):
  pytest.importorskip("torch")
  monkeypatch.setenv("HF_HUB_OFFLINE", "1")
  from benchmarks import society_real

  path = write_tiny_gguf(tmp_path / "tiny.gguf", tie=True)
  results = society_real.main(["--checkpoint", str(path), "--agents", "4", "--max-new-tokens", "3",
                               "--reason-tokens", "2", "--question-tokens", "8", "--raters", "2", "--skip", "c,d",
                               "--torch-threads", "1", "--no-system"])
  out = capsys.readouterr().out
  assert [r["agents"] for r in results] == [4]
  assert {"a", "b"} <= set(results[0]) and results[0]["a"] > 0 and results[0]["b"] > 0
  assert "(c) llama.cpp: not run: skipped" in out
  # the same fp32 weights on the same token ids: ours and transformers give the same ratings
  diff = re.search(r"max \|expected rating diff\| ours vs transformers = (\S+)", out)
  assert diff is not None and float(diff.group(1)) < 1e-4, out
