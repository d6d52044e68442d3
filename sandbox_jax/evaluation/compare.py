"""Checkpoints side by side (DESIGN.md §9): one table (Markdown, CSV, JSON), PNG plots, one HTML report.

Input: one result per checkpoint, `{"name": str, "metrics": {metric: float}, "society": optional
society_metrics(...) dict}` (what `runner.evaluate_checkpoint` returns). The table has one row per
checkpoint and one column per metric (the union, in first-seen order; missing cells are empty).
Every file is written atomically (`data.jsonl.atomic_write_bytes`: temp file, fsync, `os.replace`).
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
from sandbox_jax.evaluation.report_html import format_value, report_html


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


def table_markdown(columns: Sequence[str], rows: Sequence[Mapping], format_cell=format_value,
                   right_align: bool = True) -> str:
  """A Markdown table; `right_align` right-aligns every column after the first (the metrics)."""
  escape = lambda text: str(text).replace("|", "\\|")
  rule = ["---"] + ["---:" if right_align else "---"] * (len(columns) - 1)
  lines = ["| " + " | ".join(escape(c) for c in columns) + " |", "|" + "|".join(rule) + "|"]
  lines += ["| " + " | ".join(escape(format_cell(row.get(c))) for c in columns) + " |" for row in rows]
  return "\n".join(lines) + "\n"


def table_csv(columns: Sequence[str], rows: Sequence[Mapping]) -> str:
  buf = io.StringIO()
  writer = csv.writer(buf, lineterminator="\n")
  writer.writerow(columns)
  for row in rows:
    writer.writerow(["" if row.get(c) is None else repr(row[c]) if isinstance(row[c], float) else row[c]
                     for c in columns])
  return buf.getvalue()


def _slug(name: str) -> str:
  return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "checkpoint"


def compare(results: Sequence[Mapping], out_dir, *, title: str = "Checkpoint comparison") -> dict:
  """Writes comparison.md/.csv/.json, the PNG plots and report.html under `out_dir`.

  Returns {"markdown", "csv", "json", "html": Path, "plots": [Path, ...]}. Plots: metrics.png (bars
  per checkpoint, when any metric exists), alignment_rounds.png (when any result has society
  metrics) and maps_<i>_<name>.png (grid heatmaps per round, per result with society metrics).
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
  if len(columns) > 1 and plots.headline_metrics(columns[1:]):
    table = {row["checkpoint"]: row for row in rows}
    images.append(("metrics.png", "Metrics per checkpoint", plots.metrics_bar_chart(names, table, columns[1:])))
  if society:
    images.append(("alignment_rounds.png", "Alignment over rounds", plots.alignment_over_rounds(
        society, {name: i for i, name in enumerate(names)})))
    for i, (name, metrics) in enumerate(society.items()):
      images.append((f"maps_{i:02d}_{_slug(name)}.png", f"Grid alignment maps: {name}",
                     plots.grid_maps(name, metrics)))
  paths["plots"] = []
  for filename, _, png in images:
    atomic_write_bytes(out / filename, png)
    paths["plots"].append(out / filename)
  page = report_html(title, columns, rows, [(caption, png) for _, caption, png in images], society)
  atomic_write_text(paths["html"], page)
  return paths
