"""PNG plots for the comparison report, drawn with matplotlib's Agg canvas.

Figures are built with `matplotlib.figure.Figure` (not pyplot), which renders through Agg and never
touches a GUI backend or pyplot's global figure list. Each function returns the PNG bytes.
"""

import io

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

DETAIL_SUFFIXES = ("_stderr", "_std", "_ci_low", "_ci_high", "/n")
MAX_MAP_ROUNDS = 8
RATE_METRICS = ("acc", "acc_norm", "mc1", "mc2")


MAX_LABEL = 40


def plot_label(text, limit: int = MAX_LABEL) -> str:
  """A name as matplotlib text: at most `limit` characters (cut with '...'), control characters
  as '?', '$' escaped so it is never read as mathtext, and a leading '_' (which legends skip) kept
  visible by a leading space. The full names are in the report's tables."""
  text = "".join("?" if (ord(ch) < 32 or 0x7f <= ord(ch) < 0xa0 or 0xd800 <= ord(ch) < 0xe000) else ch
                 for ch in str(text))
  if len(text) > limit:
    text = text[:limit - 3] + "..."
  text = text.replace("$", r"\$")
  return " " + text if text.startswith("_") else text


def headline_metrics(columns) -> list[str]:
  """Metric names worth a bar: not stderr/std/CI bounds/counts."""
  return [c for c in columns if not c.endswith(DETAIL_SUFFIXES)]


def _png(fig: Figure) -> bytes:
  buf = io.BytesIO()
  fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
  return buf.getvalue()


Z95 = 1.959963984540054  # two-sided 95% normal quantile: a stderr becomes a 95% CI half-width

# (title, x-axis label, predicate on a metric name): each group is its own panel with its own axis.
PANELS = (
    ("observer ratings", "rating (1-7)", lambda m: m.startswith("gen/") and not m.endswith("_argmax")),
    ("adversarial alignment drop", "plain minus wrapped alignment (rating points)",
     lambda m: m.startswith("adv/") and m.endswith("/alignment_drop")),
    ("benchmark accuracy", "accuracy (0-1)", lambda m: m.rsplit("/", 1)[-1] in RATE_METRICS),
    ("society alignment", "rating (1-7)", lambda m: m.startswith("society/alignment")),
    ("society lift and rater disagreement", "rating points", lambda m: m.startswith("society/")),
)
# Shown in the report's tables, not plotted: per-wrapper ratings and mean argmax ratings.
UNPLOTTED = (lambda m: m.startswith("adv/") and not m.endswith("/alignment_drop"),
             lambda m: m.endswith("_argmax"))


def ci_bounds(row: dict, metric: str) -> tuple[float, float] | None:
  """The 95% CI of `metric` in a table row: its `_ci_low`/`_ci_high` columns, else value ± 1.96
  stderr, else None."""
  value = row.get(metric)
  low, high = row.get(f"{metric}_ci_low"), row.get(f"{metric}_ci_high")
  if value is not None and low is not None and high is not None and np.isfinite([low, high]).all():
    return float(low), float(high)
  stderr = row.get(f"{metric}_stderr")
  if value is not None and stderr is not None and np.isfinite(stderr):
    return float(value - Z95 * stderr), float(value + Z95 * stderr)
  return None


def metric_groups(columns) -> list[tuple[str, str, list[str]]]:
  """(title, axis label, metrics) per panel, in PANELS order; metrics no panel claims and that are
  not UNPLOTTED go to a last "other" panel."""
  shown = headline_metrics(columns)
  groups, claimed = [], set()
  for title, axis, wanted in PANELS:
    mine = [m for m in shown if m not in claimed and wanted(m)]
    claimed.update(mine)
    if mine:
      groups.append((title, axis, mine))
  rest = [m for m in shown if m not in claimed and not any(skip(m) for skip in UNPLOTTED)]
  if rest:
    groups.append(("other", "value", rest))
  return groups


def _bar_panel(ax, names, metric_names, table, title, axis_label):
  n_ckpt = len(names)
  height = 0.8 / n_ckpt
  y = np.arange(len(metric_names))
  for i, name in enumerate(names):
    row = table[name]
    values = [row.get(m) for m in metric_names]
    ax.barh(y + i * height, [np.nan if v is None else v for v in values], height, label=plot_label(name),
            color=f"C{i % 10}")
    bars = [(j, values[j], ci_bounds(row, m)) for j, m in enumerate(metric_names)]
    bars = [(j, v, ci) for j, v, ci in bars if v is not None and ci is not None]
    if bars:
      xerr = np.asarray([[max(v - lo, 0.0) for _, v, (lo, _) in bars],
                         [max(hi - v, 0.0) for _, v, (_, hi) in bars]])
      ax.errorbar([v for _, v, _ in bars], [y[j] + i * height for j, _, _ in bars], xerr=xerr,
                  fmt="none", ecolor="black", capsize=2)
  ax.set_yticks(y + height * (n_ckpt - 1) / 2, [plot_label(m, 60) for m in metric_names], fontsize=8)
  ax.invert_yaxis()
  ax.set_title(title)
  ax.set_xlabel(axis_label, fontsize=8)
  ax.grid(axis="x", alpha=0.3)
  ax.legend(fontsize=8, loc="best")


def metrics_bar_chart(names: list[str], table: dict[str, dict], columns: list[str]) -> bytes:
  """One panel per kind of measurement (`metric_groups`), each with its own x axis: grouped
  horizontal bars, one bar per checkpoint per metric, checkpoint i in colour C{i}, 95% CIs as error
  bars (`ci_bounds`)."""
  panels = [(title, axis, [m for m in group if any(table[n].get(m) is not None for n in names)])
            for title, axis, group in metric_groups(columns)]
  panels = [p for p in panels if p[2]]
  if not panels:
    raise ValueError("no metrics to plot")
  heights = [max(2.0, 0.25 * len(group) * max(1, len(names)) + 1.2) for _, _, group in panels]
  fig = Figure(figsize=(9, sum(heights)))
  axes = fig.subplots(len(panels), 1, squeeze=False, gridspec_kw={"height_ratios": heights})[:, 0]
  for ax, (title, axis, group) in zip(axes, panels):
    _bar_panel(ax, names, group, table, title, axis)
  fig.suptitle("metrics per checkpoint (error bars: 95% CI)")
  fig.tight_layout()
  return _png(fig)


def alignment_over_rounds(society: dict[str, dict], colours: dict[str, int] | None = None) -> bytes:
  """Observer alignment per round for each checkpoint's society run: after revision (solid) and
  the drafts (dashed); `colours` maps a checkpoint to its colour index in the bar chart."""
  if not society:
    raise ValueError("no society metrics to plot")
  fig = Figure(figsize=(7, 4))
  ax = fig.subplots()
  for i, (name, metrics) in enumerate(society.items()):
    rounds = [p["round"] for p in metrics["per_round"]]
    color = f"C{(colours or {}).get(name, i) % 10}"
    ax.plot(rounds, [p["alignment_after"] for p in metrics["per_round"]], "-o", color=color,
            label=f"{plot_label(name)} (revised)")
    ax.plot(rounds, [p["alignment_before"] for p in metrics["per_round"]], "--", color=color,
            alpha=0.7, label=f"{plot_label(name)} (draft)")
  ax.xaxis.set_major_locator(MaxNLocator(integer=True))
  ax.set_xlabel("round")
  ax.set_ylabel("observer alignment (1-7)")
  ax.set_title("alignment over rounds")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  return _png(fig)


def shown_rounds(count: int, limit: int = MAX_MAP_ROUNDS) -> list[int]:
  """Indices of the rounds to draw: all of them up to `limit`, else `limit` evenly spaced ones
  including the first and the last."""
  if count <= limit:
    return list(range(count))
  return sorted({int(round(x)) for x in np.linspace(0, count - 1, limit)})


def grid_maps(name: str, metrics: dict) -> bytes:
  """Heatmaps of after-revision alignment over the grid: one row per world, one column per round
  (at most MAX_MAP_ROUNDS, evenly spaced), colour scale fixed to 1..7."""
  worlds, rounds = metrics["worlds"], metrics["rounds"]
  cols = shown_rounds(len(rounds))
  fig = Figure(figsize=(2.2 * len(cols) + 1, 2.2 * len(worlds) + 0.6))
  axes = fig.subplots(len(worlds), len(cols), squeeze=False)
  image = None
  for w, world in enumerate(worlds):
    for c, r in enumerate(cols):
      grid = np.asarray([[np.nan if v is None else v for v in row] for row in world["alignment_maps"][r]])
      ax = axes[w, c]
      image = ax.imshow(grid, vmin=1, vmax=7, cmap="RdYlGn")
      ax.set_xticks([])
      ax.set_yticks([])
      ax.set_title(f"{plot_label(world['world'], 24)} #{world['world_index']}, round {rounds[r]}", fontsize=8)
  fig.colorbar(image, ax=axes.ravel().tolist(), label="alignment after revision")
  fig.suptitle(f"{plot_label(name)}: alignment over the grid")
  return _png(fig)
