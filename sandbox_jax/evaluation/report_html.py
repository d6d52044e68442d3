"""The comparison report as one self-contained HTML page (DESIGN.md §9), rendered from the jinja2
template `templates/report.html.j2` (package data) with autoescaping on: every name and label is
text, never markup. Plots are embedded as base64 PNG data URLs; a Content-Security-Policy forbids
scripts and any network load.

What it shows, top to bottom: the headline table (`headline`: alignment, engagement, adversarial
mean drop and worst wrapper, multiple-choice accuracies; one row per checkpoint; the best marked
only where its 95% CI separates from every other row's), the adversarial table (`adversarial`:
wrappers x checkpoints, cells coloured by the alignment drop), the grouped plots, the society
section (alignment over rounds, draft vs revision, grid maps, per-round tables), and the full table.
"""

import base64
import math
import re
from dataclasses import dataclass, field

import jinja2
import markupsafe

from sandbox_jax.evaluation.plots import RATE_METRICS, ci_bounds, headline_metrics

AGGREGATE_WRAPPERS = ("mean", "max")  # adv/mean/..., adv/max/...: over wrappers, not wrappers

_ENV = jinja2.Environment(loader=jinja2.PackageLoader("sandbox_jax.evaluation", "templates"),
                          autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                          lstrip_blocks=True)
# a line-break opportunity after each '/' and '_' of a (metric) name, so narrow headers wrap there
_ENV.filters["breakable"] = lambda text: markupsafe.escape(text).replace("/", markupsafe.Markup("/<wbr>")).replace(
    "_", markupsafe.Markup("_<wbr>"))


_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")


def valid_unicode(text: str) -> str:
  """`text` with each lone surrogate (which UTF-8 cannot hold) replaced by U+FFFD, the character a
  byte-level tokenizer's decode already puts in place of invalid UTF-8 bytes: model text reaches
  every text file (HTML, Markdown, CSV) as valid Unicode with invalid bytes shown as U+FFFD."""
  return _SURROGATE.sub("\ufffd", text)


def visible(text) -> str:
  """Text for a static HTML page: valid Unicode, and the C0 control characters (except tab and
  newline) and DEL as their Unicode Control Pictures (NUL -> U+2400), since an HTML parser drops or
  replaces them. Markup characters stay as they are; the template's autoescaping makes them text."""
  text = valid_unicode(str(text))
  return _CONTROL.sub(lambda m: chr(0x2421) if m.group() == "\x7f" else chr(0x2400 + ord(m.group())), text)


def format_value(value) -> str:
  """4 decimals for floats, as-is for ints and text, empty for missing or NaN."""
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return ""
  if isinstance(value, float):
    return f"{value:.4f}"
  return str(value)


@dataclass
class Cell:
  value: float | None = None
  ci: tuple[float, float] | None = None
  digits: int = 2
  best: bool = False
  note: str = ""  # text shown instead of / after the value (e.g. the worst wrapper's name)

  @property
  def text(self) -> str:
    return "" if self.value is None else f"{self.value:.{self.digits}f}"

  @property
  def ci_text(self) -> str:
    return "" if self.ci is None else f"[{self.ci[0]:.{self.digits}f}, {self.ci[1]:.{self.digits}f}]"


@dataclass
class Column:
  key: str
  label: str
  better: str = "high"  # "high", "low" or "" (never marked)
  digits: int = 2
  cells: list[Cell] = field(default_factory=list)


def wrappers(columns) -> list[str]:
  """Adversarial wrapper names with a per-wrapper alignment drop, in column order."""
  out = []
  for c in columns:
    parts = c.split("/")
    if len(parts) == 3 and parts[0] == "adv" and parts[2] == "alignment_drop" and parts[1] not in AGGREGATE_WRAPPERS:
      out.append(parts[1])
  return out


def mark_best(column: Column) -> None:
  """Marks the best cell (highest, or lowest for better="low") only when its CI lies strictly
  above (below) every other row's CI; a row with a value but no CI blocks the mark."""
  present = [c for c in column.cells if c.value is not None]
  if column.better not in ("high", "low") or len(present) < 2 or any(c.ci is None for c in present):
    return
  sign = 1.0 if column.better == "high" else -1.0
  best = max(present, key=lambda c: sign * c.value)
  others = [c for c in present if c is not best]
  if column.better == "high" and all(best.ci[0] > c.ci[1] for c in others):
    best.best = True
  if column.better == "low" and all(best.ci[1] < c.ci[0] for c in others):
    best.best = True


def headline(columns, rows) -> list[Column]:
  """The headline columns present in the table, each with one cell per row (see module docstring)."""
  metrics = set(columns)
  out = []
  for key, label in (("gen/alignment", "alignment (1-7)"), ("gen/engagement", "engagement (1-7)")):
    if key in metrics:
      out.append(Column(key, label))
  if "adv/mean/alignment_drop" in metrics:
    out.append(Column("adv/mean/alignment_drop", "adversarial mean drop", better="low"))
  names = wrappers(columns)
  if names:
    out.append(Column("adv/worst", "worst wrapper (drop)", better=""))
  rates = [m for m in headline_metrics(columns) if m.rsplit("/", 1)[-1] in RATE_METRICS]
  out += [Column(m, m, digits=3) for m in rates]
  for column in out:
    for row in rows:
      if column.key == "adv/worst":
        drops = [(row.get(f"adv/{w}/alignment_drop"), w) for w in names]
        drops = [(d, w) for d, w in drops if d is not None]
        worst = max(drops, key=lambda dw: dw[0], default=None)
        column.cells.append(Cell(worst[0], None, 2, note=worst[1]) if worst else Cell())
      else:
        value = row.get(column.key)
        column.cells.append(Cell(value, ci_bounds(row, column.key) if value is not None else None, column.digits))
    mark_best(column)
  return out


def heat_colour(drop: float | None, scale: float) -> str:
  """Background for an alignment drop: white at 0, red as the drop grows to `scale`, blue for a
  gain (negative drop)."""
  if drop is None:
    return "#f4f4f4"
  t = min(abs(drop) / scale, 1.0) if scale > 0 else 0.0
  hue = 0 if drop > 0 else 215
  return f"hsl({hue}, 75%, {100 - 35 * t:.0f}%)"


@dataclass
class AdvCell:
  drop: float | None
  ci: tuple[float, float] | None
  alignment: float | None
  colour: str


def adversarial(columns, rows) -> dict | None:
  """{"wrappers": [...], "plain": [alignment per checkpoint], "cells": [[AdvCell per checkpoint]
  per wrapper], "scale": colour scale} or None when no wrapper was run."""
  names = wrappers(columns)
  if not names:
    return None
  drops = [row.get(f"adv/{w}/alignment_drop") for w in names for row in rows]
  scale = max([1.0] + [abs(d) for d in drops if d is not None])
  cells = []
  for w in names:
    key = f"adv/{w}/alignment_drop"
    cells.append([AdvCell(row.get(key), ci_bounds(row, key), row.get(f"adv/{w}/alignment"),
                          heat_colour(row.get(key), scale)) for row in rows])
  return {"wrappers": names, "plain": [row.get("gen/alignment") for row in rows], "cells": cells,
          "scale": scale, "legend": [(d, heat_colour(d, scale)) for d in (-scale, -scale / 2, 0.0, scale / 2, scale)]}


SOCIETY_COLUMNS = (("round", "round", 0), ("alignment_before", "draft", 2), ("alignment_after", "revised", 2),
                   ("lift", "lift", 2), ("engagement_before", "engagement draft", 2),
                   ("engagement_after", "engagement revised", 2), ("peer_rating", "peer rating", 2),
                   ("rater_mad", "rater MAD", 2), ("n_agents", "agents", 0))


def _fixed(value, digits: int) -> str:
  if value is None or (isinstance(value, float) and not math.isfinite(value)):
    return ""
  return f"{value:.{digits}f}" if digits else str(value)


def report_html(title: str, columns: list[str], rows: list[dict], images: list[tuple[str, bytes]],
                society: dict[str, dict]) -> str:
  """The page. `images`: (caption, PNG) in order; captions starting "Grid alignment maps" and
  "Alignment over rounds" go to the society section, the rest to the plots section."""
  encoded = [(caption, base64.b64encode(png).decode("ascii")) for caption, png in images]
  is_society = lambda caption: caption.startswith(("Alignment over rounds", "Grid alignment maps"))
  society_tables = {name: [[_fixed(p.get(key), d) for key, _, d in SOCIETY_COLUMNS] for p in m["per_round"]]
                    for name, m in society.items()}
  table = headline(columns, rows)
  for column in table:
    column.label = visible(column.label)
    for cell in column.cells:
      cell.note = visible(cell.note)
  adv = adversarial(columns, rows)
  if adv:
    adv["wrappers"] = [visible(w) for w in adv["wrappers"]]
  return _ENV.get_template("report.html.j2").render(
      title=visible(title), names=[visible(row["checkpoint"]) for row in rows], headline=table,
      adversarial=adv, fixed=_fixed,
      plots=[(visible(c), d) for c, d in encoded if not is_society(c)],
      society_plots=[(visible(c), d) for c, d in encoded if is_society(c)],
      society_columns=[label for _, label, _ in SOCIETY_COLUMNS],
      society_tables={visible(name): t for name, t in society_tables.items()},
      columns=[visible(c) for c in columns],
      rows=[[visible(format_value(row.get(c))) for c in columns] for row in rows])
