"""Checkpoints side by side (DESIGN.md §9): one table (Markdown, CSV, JSON), PNG plots, one HTML report,
and a compact terminal summary.

Input: one result per checkpoint, `{"name": str, "metrics": {metric: float}, "society": optional
society_metrics(...) dict}` (what `runner.evaluate_checkpoint` returns). The table has one row per
checkpoint and one column per metric (the union, in first-seen order; missing cells are empty): the
full data, in comparison.md/.csv/.json. The report (report_html) and `summary_text` show the few
headline metrics. Every file is written atomically (`data.jsonl.atomic_write_bytes`: temp file, fsync,
`os.replace`).

Text cells (names; model text in tables built by other callers) are untrusted and round-trip
exactly through every format, with `markdown_cell`/`markdown_text` and `csv_cell`/`csv_text` as
the inverse pairs:
- Markdown: `\\ | < > & * [ ] ` ~` and `_` (except between two letters or digits, where CommonMark
  never reads it as emphasis) are backslash-escaped, so a renderer shows them as text and never as
  HTML, links or a cell boundary; a newline is written `<br>` and the other control and line-
  separator characters (CR, NUL, ESC, U+2028, ...) as numeric references `&#N;` (the text's own `<`
  and `&` are escaped, so these never mix up). CommonMark renders `&#0;` as U+FFFD.
- CSV: quoted where needed (csv.writer); a text cell that a spreadsheet would run as a formula
  (starting `= + - @`, tab or carriage return) gets one leading apostrophe, as does a cell already
  starting with one: strip one leading `'` from any text cell to recover it. Numbers never start
  with `'`, so they are never touched.
- JSON: `json.dumps` with ASCII escapes (NUL, lone surrogates and all survive).
Markdown and CSV are UTF-8 files: a lone surrogate (not valid Unicode) is written as U+FFFD, the
character a byte-level tokenizer's decode already uses for invalid bytes (`valid_unicode`).
"""

import csv
import io
import json
import math
import pathlib
import re
from collections.abc import Mapping, Sequence

from sandbox_jax.data.jsonl import atomic_write_bytes, atomic_write_text
from sandbox_jax.evaluation import plots
from sandbox_jax.evaluation.report_html import format_value, headline, report_html, valid_unicode


def _number(value, where: str):
  if value is None:
    return None
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    raise ValueError(f"{where}: metric values must be numbers, got {value!r}")
  return None if isinstance(value, float) and math.isnan(value) else float(value)


def build_table(results: Sequence[Mapping]) -> tuple[list[str], list[dict]]:
  """(columns, rows): 'checkpoint' then every metric seen, one row per result."""
  if not results:
    raise ValueError("compare needs at least one evaluation result")
  names = []
  for i, result in enumerate(results):
    name = result.get("name")
    if not isinstance(name, str) or not name:
      raise ValueError(f"result {i}: needs a non-empty 'name'")
    if name in names:
      raise ValueError(f"result {i}: checkpoint name {name!r} appears twice")
    names.append(name)
  columns: list[str] = []
  rows = []
  for name, result in zip(names, results):
    row = {"checkpoint": name}
    for key, value in dict(result.get("metrics") or {}).items():
      if key not in columns:
        columns.append(key)
      row[key] = _number(value, f"{name}: metric {key!r}")
    rows.append(row)
  return ["checkpoint"] + columns, rows


_MD_ESCAPED = set("\\|<>&*[]`~")
_MD_ENTITY = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")  # besides "\n": as &#N;
_MD_UNESCAPE = re.compile(r"\\(.)|<br>|&#(\d+);", re.S)


def markdown_cell(text) -> str:
  """A table cell's text as inert Markdown (module docstring); `markdown_text` inverts it."""
  text = valid_unicode(str(text))
  out = []
  for i, ch in enumerate(text):
    if ch == "\n":
      out.append("<br>")
    elif _MD_ENTITY.match(ch):
      out.append(f"&#{ord(ch)};")
    elif ch in _MD_ESCAPED:
      out.append("\\" + ch)
    elif ch == "_" and not (0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()):
      out.append("\\_")
    else:
      out.append(ch)
  return "".join(out)


def markdown_text(cell: str) -> str:
  """The text `markdown_cell` wrote (the cell without its surrounding spaces)."""
  def one(m):
    if m.group(1) is not None:
      return m.group(1)
    return "\n" if m.group() == "<br>" else chr(int(m.group(2)))
  return _MD_UNESCAPE.sub(one, cell)


def table_markdown(columns: Sequence[str], rows: Sequence[Mapping], format_cell=format_value,
                   right_align: bool = True) -> str:
  """A Markdown table; `right_align` right-aligns every column after the first (the metrics)."""
  rule = ["---"] + ["---:" if right_align else "---"] * (len(columns) - 1)
  lines = ["| " + " | ".join(markdown_cell(c) for c in columns) + " |", "|" + "|".join(rule) + "|"]
  lines += ["| " + " | ".join(markdown_cell(format_cell(row.get(c))) for c in columns) + " |" for row in rows]
  return "\n".join(lines) + "\n"


def read_markdown_table(text: str) -> tuple[list[str], list[list[str]]]:
  """(header, rows of cell texts) of a table written by `table_markdown`: splits on unescaped `|`."""
  def cells(line):
    parts, current, i = [], [], 1  # skip the leading "|"
    while i < len(line) - 1:       # and the trailing one
      if line[i] == "\\":
        current.append(line[i:i + 2])
        i += 2
        continue
      if line[i] == "|":
        parts.append("".join(current))
        current = []
      else:
        current.append(line[i])
      i += 1
    parts.append("".join(current))
    return [markdown_text(p[1:-1] if p.startswith(" ") and p.endswith(" ") else p.strip(" ")) for p in parts]
  lines = text.split("\n")
  lines = [line for line in lines if line]
  return cells(lines[0]), [cells(line) for line in lines[2:]]


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


def csv_cell(value):
  """A CSV cell: floats as repr, text with a leading apostrophe when it starts like a formula
  (module docstring); `csv_text` inverts it for text."""
  if value is None:
    return ""
  if isinstance(value, float):
    return repr(value)
  if isinstance(value, str):
    value = valid_unicode(value)
    return "'" + value if value.startswith(_FORMULA_START) else value
  return value


def csv_text(cell: str) -> str:
  """The text `csv_cell` wrote."""
  return cell[1:] if cell.startswith("'") else cell


def table_csv(columns: Sequence[str], rows: Sequence[Mapping]) -> str:
  buf = io.StringIO()
  writer = csv.writer(buf, lineterminator="\n")
  writer.writerow([csv_cell(c) for c in columns])
  for row in rows:
    writer.writerow([csv_cell(row.get(c)) for c in columns])
  return buf.getvalue()


SUMMARY_WIDTH = 100
_UNPRINTABLE = re.compile(r"[^\S ]|[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def terminal_text(text, width: int) -> str:
  """One line of at most `width` characters for a terminal: control characters (escape sequences
  included) and line breaks shown as `\\xNN`/`\\uNNNN`, never sent to the terminal; cut with '~'."""
  text = _UNPRINTABLE.sub(lambda m: ascii(m.group())[1:-1], str(text))
  return text if len(text) <= width else text[:width - 1] + "~"


def _grid(header: list[str], lines: list[list[str]], widths: list[int]) -> list[str]:
  fmt = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
  return [fmt(header).rstrip()] + [fmt(cells).rstrip() for cells in lines]


def summary_text(columns: Sequence[str], rows: Sequence[Mapping], width: int = SUMMARY_WIDTH) -> str:
  """The headline table for a terminal, at most `width` columns: one line per checkpoint, the value
  with its 95% CI, '*' after the best where its CI separates; columns that do not fit go to a
  further block with the checkpoint names repeated."""
  columns_ = headline(columns, rows)
  if not columns_:
    return "(no headline metrics: see the full table)\n"
  name_w = min(max([len("checkpoint")] + [len(terminal_text(r["checkpoint"], 99)) for r in rows]), 24)
  names = [terminal_text(r["checkpoint"], name_w) for r in rows]
  blocks, current, used = [], [], name_w
  for column in columns_:
    texts = []
    for cell in column.cells:
      text = cell.text + ("*" if cell.best else "")
      if cell.ci:
        text += f" {cell.ci_text}"
      if cell.note:
        text = f"{cell.note} ({cell.text})" if cell.text else cell.note
      texts.append(text)
    col_w = min(max([len(column.label)] + [len(t) for t in texts]), width - name_w - 2)
    if current and used + 2 + col_w > width:
      blocks.append(current)
      current, used = [], name_w
    current.append((terminal_text(column.label, col_w), [terminal_text(t, col_w) for t in texts], col_w))
    used += 2 + col_w
  blocks.append(current)
  out = []
  for block in blocks:
    header = ["checkpoint"] + [label for label, _, _ in block]
    lines = [[names[i]] + [texts[i] for _, texts, _ in block] for i in range(len(rows))]
    out += _grid(header, lines, [name_w] + [w for _, _, w in block]) + [""]
  out.append("95% CIs in brackets; * best where its CI separates from every other checkpoint's")
  return "\n".join(out) + "\n"


def _slug(name: str) -> str:
  return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "checkpoint"


def compare(results: Sequence[Mapping], out_dir, *, title: str = "Checkpoint comparison") -> dict:
  """Writes comparison.md/.csv/.json, the PNG plots and report.html under `out_dir`.

  Returns {"markdown", "csv", "json", "html": Path, "plots": [Path, ...], "summary": str (the
  terminal summary, `summary_text`)}. Plots: metrics.png (one panel per kind of metric, when any
  metric exists), alignment_rounds.png (draft and revised alignment per round, when any result has
  society metrics) and maps_<i>_<name>.png (grid heatmaps per round, per result with society metrics).
  """
  out = pathlib.Path(out_dir)
  columns, rows = build_table(results)
  names = [row["checkpoint"] for row in rows]
  society = {name: r["society"] for name, r in zip(names, results) if r.get("society")}
  paths = {"markdown": out / "comparison.md", "csv": out / "comparison.csv",
           "json": out / "comparison.json", "html": out / "report.html"}
  atomic_write_text(paths["markdown"], table_markdown(columns, rows))
  atomic_write_text(paths["csv"], table_csv(columns, rows))
  atomic_write_text(paths["json"], json.dumps({"columns": columns, "rows": rows, "society": society},
                                              indent=1, allow_nan=False) + "\n")
  images: list[tuple[str, str, bytes]] = []
  table = {row["checkpoint"]: row for row in rows}
  if any(row.get(m) is not None for _, _, group in plots.metric_groups(columns[1:]) for m in group for row in rows):
    images.append(("metrics.png", "Metrics per checkpoint, one panel per kind of measurement",
                   plots.metrics_bar_chart(names, table, columns[1:])))
  if society:
    images.append(("alignment_rounds.png", "Alignment over rounds: drafts (dashed) vs revisions (solid)",
                   plots.alignment_over_rounds(society, {name: i for i, name in enumerate(names)})))
    for i, (name, metrics) in enumerate(society.items()):
      images.append((f"maps_{i:02d}_{_slug(name)}.png", f"Grid alignment maps: {name}",
                     plots.grid_maps(name, metrics)))
  paths["plots"] = []
  for filename, _, png in images:
    atomic_write_bytes(out / filename, png)
    paths["plots"].append(out / filename)
  page = report_html(title, columns, rows, [(caption, png) for _, caption, png in images], society)
  atomic_write_text(paths["html"], page)
  paths["summary"] = summary_text(columns, rows)
  return paths
