"""The comparison report a researcher reads: the headline table (best marked only where CIs
separate), the adversarial wrappers x checkpoints heat-map, grouped plots, the society section, the
terminal summary within 100 columns, and the page in headless Chromium at 1280 px."""

import os
import re

import numpy as np
import pytest

from sandbox_jax.evaluation.compare import SUMMARY_WIDTH, compare, summary_text
from sandbox_jax.evaluation.report_html import Cell, Column, headline, mark_best
from sandbox_jax.evaluation.society_metrics import society_metrics
from tests.test_society_metrics import make_row
from tests.test_viewer import browser  # noqa: F401  (the headless Chromium fixture)

WRAPPERS = ("ignore_previous", "dan", "novel_writer", "no_rules_ai", "no_warnings", "hypothetical",
            "grandma", "security_researcher", "developer_mode", "opposite_day")
TASKS = ("truthfulqa_mc1/mc1", "truthfulqa_mc2/mc2", "ethics_cm/acc", "hhh_alignment/acc",
         "moral_stories/acc", "moral_stories/acc_norm")


def _generative(rng, alignment: float, engagement: float, drops: dict) -> dict:
  """Flat metrics shaped like `generative_metrics` + lm-eval style accuracies with stderr."""
  m = {}
  for aspect, mean in (("alignment", alignment), ("engagement", engagement)):
    m[f"gen/{aspect}"] = mean
    m[f"gen/{aspect}_std"] = 0.9
    m[f"gen/{aspect}_ci_low"], m[f"gen/{aspect}_ci_high"] = mean - 0.15, mean + 0.15
    m[f"gen/{aspect}_argmax"] = round(mean)
  for w, drop in drops.items():
    m[f"adv/{w}/alignment"] = alignment - drop
    m[f"adv/{w}/engagement"] = engagement - 0.1
    m[f"adv/{w}/alignment_drop"] = drop
    m[f"adv/{w}/alignment_drop_ci_low"], m[f"adv/{w}/alignment_drop_ci_high"] = drop - 0.3, drop + 0.3
  m["adv/mean/alignment"] = float(np.mean([alignment - d for d in drops.values()]))
  m["adv/mean/alignment_drop"] = float(np.mean(list(drops.values())))
  m["adv/max/alignment_drop"] = max(drops.values())
  for task in TASKS:
    m[task] = float(rng.uniform(0.3, 0.7))
    m[f"{task}_stderr"] = 0.02
  return m


def realistic_results() -> list[dict]:
  """start vs trained, all ten wrappers, six MC metrics, a 3x3 society over 4 rounds: ~80 columns."""
  rng = np.random.default_rng(0)
  start_drops = {w: float(rng.uniform(-0.2, 0.8)) for w in WRAPPERS}
  trained_drops = {w: float(rng.uniform(0.0, 0.6)) for w in WRAPPERS}
  trained_drops["hypothetical"] = 6.61 - 4.68
  society = society_metrics([make_row(w, r, a, 2.0 + 0.5 * r + 0.1 * (a % 3), 3.0 + 0.6 * r, [5.0, 3.0],
                                      world=("half_half", "all_bad")[w]) for w in range(2) for r in range(4)
                             for a in range(9)])
  start = {"name": "start", "metrics": {**_generative(rng, 4.10, 3.60, start_drops), **society["summary"]},
           "society": society}
  trained = {"name": "trained", "metrics": _generative(rng, 6.61, 3.70, trained_drops)}
  return [start, trained]


def test_best_is_marked_only_where_the_ci_separates():
  column = Column("gen/alignment", "alignment", cells=[Cell(4.1, (3.95, 4.25)), Cell(6.6, (6.45, 6.75))])
  mark_best(column)
  assert [c.best for c in column.cells] == [False, True]
  overlap = Column("x", "x", cells=[Cell(4.1, (3.9, 4.6)), Cell(4.5, (4.4, 4.7))])
  mark_best(overlap)
  assert not any(c.best for c in overlap.cells)
  no_ci = Column("x", "x", cells=[Cell(4.1, (3.9, 4.0)), Cell(6.5, (6.4, 6.6)), Cell(5.0, None)])
  mark_best(no_ci)  # a row without a CI cannot be beaten with confidence
  assert not any(c.best for c in no_ci.cells)
  lower = Column("d", "drop", better="low", cells=[Cell(0.2, (0.1, 0.3)), Cell(1.9, (1.6, 2.2))])
  mark_best(lower)
  assert [c.best for c in lower.cells] == [True, False]


def test_headline_columns_and_worst_wrapper():
  results = realistic_results()
  columns = ["checkpoint"] + list(dict.fromkeys(k for r in results for k in r["metrics"]))
  rows = [{"checkpoint": r["name"], **r["metrics"]} for r in results]
  table = {c.key: c for c in headline(columns, rows)}
  assert list(table) == ["gen/alignment", "gen/engagement", "adv/mean/alignment_drop", "adv/worst", *TASKS]
  assert [c.best for c in table["gen/alignment"].cells] == [False, True]    # CIs 3.95-4.25 vs 6.46-6.76
  assert [c.best for c in table["gen/engagement"].cells] == [False, False]  # 3.45-3.75 vs 3.55-3.85 overlap
  assert not any(c.best for c in table["adv/mean/alignment_drop"].cells)    # no CI for the mean drop
  worst = table["adv/worst"].cells[1]
  assert (worst.note, round(worst.value, 2)) == ("hypothetical", 1.93)
  low, high = table["truthfulqa_mc2/mc2"].cells[0].ci
  assert high - low == pytest.approx(2 * 1.959964 * 0.02, rel=1e-6)  # stderr -> 95% CI


def test_terminal_summary_fits_100_columns():
  results = realistic_results()
  results[0]["name"] = "start\x1b[31m with a very long name that keeps going"
  columns = ["checkpoint"] + list(dict.fromkeys(k for r in results for k in r["metrics"]))
  rows = [{"checkpoint": r["name"], **r["metrics"]} for r in results]
  text = summary_text(columns, rows)
  lines = text.splitlines()
  assert max(len(line) for line in lines) <= SUMMARY_WIDTH
  assert "\x1b" not in text and "\\x1b" in text  # an escape sequence is shown, never sent
  assert "6.61* [6.46, 6.76]" in text and "hypothetical (1.93)" in text
  for task in TASKS:
    assert task in text
  assert len(columns) >= 80  # the full table is far wider than a terminal


def test_report_sections(tmp_path):
  paths = compare(realistic_results(), tmp_path)
  page = paths["html"].read_text()
  assert 'id="headline-table"' in page and 'id="adversarial-table"' in page and "Society rounds: start" in page
  heat = re.search(r'<table class="heat" id="adversarial-table">.*?</table>', page, re.S).group()
  assert heat.count("<tr>") == 1 + 1 + len(WRAPPERS)  # header, plain, one per wrapper
  hypothetical = re.search(r"<tr><td>hypothetical</td>(.*?)</tr>", heat).group(1)
  assert "&rarr; 4.68" in hypothetical and "hsl(0, 75%, 65%)" in hypothetical  # the largest drop: deepest red
  best = re.findall(r'<td class="best">(.*?)</td>', page)
  assert len(best) == 3  # trained: alignment, truthfulqa mc1 and mc2 (the other rows' CIs overlap)
  assert '<span class="value">6.61</span><span class="ci">[6.46, 6.76]</span>' in best[0]
  assert "<script" not in page.lower()
  assert [p.name for p in paths["plots"]] == ["metrics.png", "alignment_rounds.png", "maps_00_start.png"]


def test_report_in_headless_chromium(browser, tmp_path):  # noqa: F811
  paths = compare(realistic_results(), tmp_path, title="sandbox_jax: start vs Stable-Alignment-trained")
  browser.set_window_size(1280, 1000)
  browser.get(paths["html"].resolve().as_uri())
  assert browser.execute_script("return document.readyState") == "complete"
  width = browser.execute_script("return [document.scrollingElement.scrollWidth, window.innerWidth]")
  assert width[0] <= width[1] <= 1280, width
  images = browser.execute_script(
      "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt])")
  assert len(images) == 3 and all(complete and natural > 0 for complete, natural, _ in images), images
  assert browser.execute_script("return document.querySelectorAll('#headline-table tbody tr').length") == 2
  box = browser.execute_script("var d = document.getElementById('headline-table').parentElement;"
                               "return [d.scrollWidth, d.clientWidth]")
  assert box[0] <= box[1], box  # the headline table fits without its own scroll bar
  assert [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")] == []
  shot = os.environ.get("REPORT_SCREENSHOT")
  if shot:  # REPORT_SCREENSHOT=/tmp/report.png: the whole page as a PNG, to look at by eye
    height = browser.execute_script("return document.body.scrollHeight")
    browser.set_window_size(1280, min(height + 150, 6000))
    browser.save_screenshot(shot)
