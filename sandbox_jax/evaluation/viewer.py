"""A static, self-contained HTML viewer of a society transcript.

The page shows each world's grid for one round at a time (a round selector, prev/next buttons),
cells coloured by the observer's alignment of the revised answer (1 red .. 7 green; the draft's
score on request). Clicking an agent shows its transcript: question, draft, the peer ratings with
rater ids and reasons, the average rating, the revision, the observer scores before/after and the
memory entry used. The data is embedded in the page as JSON (escaped so no text can close the
script element); the script is vanilla JS that writes text with `textContent`, never as HTML; the
page loads nothing from the network.

Model text is hostile input: it reaches the page only as JSON data and leaves it only through
`textContent`, so markup, `javascript:` URLs, NUL and 100 kB answers are shown verbatim and run
nothing. Lone surrogates (not valid Unicode, never produced by a tokenizer's decode, which puts
U+FFFD in place of invalid bytes) are shown as U+FFFD, as in every other output (`valid_unicode`).
"""

import html
import json
import pathlib
import re

from sandbox_jax.data.jsonl import atomic_write_text
from sandbox_jax.evaluation.report_html import valid_unicode, visible
from sandbox_jax.evaluation.society_metrics import infer_grid_size, load_transcript

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>__TITLE__</title><style>__STYLE__</style></head>
<body>
<h1>__TITLE__</h1>
<div id="controls">
  <label>World <select id="world"></select></label>
  <button id="prev" type="button">&larr;</button>
  <label>Round <select id="round"></select></label>
  <button id="next" type="button">&rarr;</button>
  <label>Colour by <select id="colour">
    <option value="alignment_after">alignment after revision</option>
    <option value="alignment_before">alignment of the draft</option>
  </select></label>
</div>
<div id="summary"></div>
<div id="main">
  <div><div id="grid"></div><div id="legend"></div></div>
  <div id="detail"><p class="hint">Click an agent to see its transcript.</p></div>
</div>
<script type="application/json" id="data">__DATA__</script>
<script>__SCRIPT__</script>
</body></html>
"""

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
#controls { display: flex; gap: 1em; align-items: center; flex-wrap: wrap; margin-bottom: 0.5em; }
#summary { margin: 0.5em 0 1em; color: #444; }
#main { display: flex; gap: 2em; align-items: flex-start; flex-wrap: wrap; }
#grid { display: grid; gap: 3px; }
.cell { width: 56px; height: 56px; border: 2px solid transparent; border-radius: 4px; cursor: pointer;
        font-size: 11px; line-height: 1.2; padding: 0; color: #111; }
.cell.bad { border-style: dashed; border-color: #555; }
.cell.selected { border: 3px solid #000; }
.cell.empty { background: #eee; cursor: default; }
#legend { margin-top: 0.5em; font-size: 12px; display: flex; gap: 2px; align-items: center; }
#legend span { display: inline-block; width: 22px; text-align: center; padding: 2px 0; }
#detail { max-width: 760px; flex: 1; min-width: 320px; }
#detail h2 { margin-top: 0; }
#detail pre { white-space: pre-wrap; word-break: break-word; background: #f6f6f6; padding: 0.5em; margin: 0.2em 0 0.8em; }
#detail table { border-collapse: collapse; font-size: 13px; margin-bottom: 0.8em; }
#detail th, #detail td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; vertical-align: top; }
.hint { color: #777; }
"""

SCRIPT = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("data").textContent);
  var n = data.grid_size;
  var index = {};
  data.records.forEach(function (r) { index[r.world + "/" + r.round + "/" + r.agent] = r; });
  var el = function (id) { return document.getElementById(id); };
  var state = { world: data.worlds.length ? data.worlds[0].index : 0, roundPos: 0, agent: null };

  function node(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function fmt(x) { return (x === null || x === undefined) ? "-" : Number(x).toFixed(2); }
  function colour(score) {
    var t = Math.max(0, Math.min(1, (score - 1) / 6));
    return "hsl(" + Math.round(120 * t) + ", 70%, 58%)";
  }
  function record(agent) {
    return index[state.world + "/" + data.rounds[state.roundPos] + "/" + agent] || null;
  }

  function fillSelectors() {
    data.worlds.forEach(function (w) {
      var o = node("option", w.name + " (world " + w.index + ", seed " + w.seed + ")");
      o.value = String(w.index);
      el("world").appendChild(o);
    });
    data.rounds.forEach(function (r, i) {
      var o = node("option", String(r));
      o.value = String(i);
      el("round").appendChild(o);
    });
  }

  function renderGrid() {
    var grid = el("grid"), key = el("colour").value, rows = [];
    grid.replaceChildren();
    grid.style.gridTemplateColumns = "repeat(" + n + ", 56px)";
    for (var a = 0; a < n * n; a++) {
      var r = record(a), cell = node("button", null, "cell");
      cell.type = "button";
      cell.dataset.agent = String(a);
      if (r) {
        rows.push(r);
        cell.style.background = colour(r[key]);
        cell.title = "Agent " + a + " (" + r.label + "): " + fmt(r[key]);
        cell.appendChild(node("div", "#" + a));
        cell.appendChild(node("div", fmt(r[key])));
        if (r.label === "bad") cell.classList.add("bad");
        cell.addEventListener("click", onCellClick);
      } else {
        cell.classList.add("empty");
        cell.disabled = true;
      }
      if (a === state.agent) cell.classList.add("selected");
      grid.appendChild(cell);
    }
    var mean = function (k) { return rows.reduce(function (s, r) { return s + r[k]; }, 0) / rows.length; };
    el("summary").textContent = rows.length
      ? "Round " + data.rounds[state.roundPos] + ": " + rows.length + " agents; mean alignment draft " +
        fmt(mean("alignment_before")) + ", revised " + fmt(mean("alignment_after")) + ", lift " +
        fmt(mean("alignment_after") - mean("alignment_before"))
      : "No agents in this world and round.";
  }

  function onCellClick(event) {
    state.agent = Number(event.currentTarget.dataset.agent);
    renderGrid();
    renderDetail();
  }

  function section(parent, title, text, id) {
    parent.appendChild(node("h3", title));
    var pre = node("pre", text);
    if (id) pre.id = id;
    parent.appendChild(pre);
  }

  function renderDetail() {
    var box = el("detail"), r = state.agent === null ? null : record(state.agent);
    box.replaceChildren();
    if (!r) { box.appendChild(node("p", "Click an agent to see its transcript.", "hint")); return; }
    box.appendChild(node("h2", "Agent " + r.agent + " (" + r.label + "), round " + r.round));
    var scores = node("table");
    scores.id = "scores";
    scores.appendChild(tableRow(["observer", "draft", "revised"], "th"));
    scores.appendChild(tableRow(["alignment", fmt(r.alignment_before), fmt(r.alignment_after)]));
    scores.appendChild(tableRow(["engagement", fmt(r.engagement_before), fmt(r.engagement_after)]));
    box.appendChild(scores);
    section(box, "Question", r.question, "question");
    section(box, "Draft answer", r.draft, "draft");
    box.appendChild(node("h3", "Peer ratings (average " + fmt(r.average) + ")"));
    var peers = node("table");
    peers.id = "peers";
    peers.appendChild(tableRow(["rater", "rating", "argmax", "reason"], "th"));
    r.raters.forEach(function (p) {
      peers.appendChild(tableRow(["Agent " + p.id, fmt(p.rating), String(p.argmax), p.reason]));
    });
    box.appendChild(peers);
    section(box, "Revised answer", r.revised, "revised");
    if (r.alignment_reason_before || r.alignment_reason_after) {
      section(box, "Observer reasons (draft / revised)",
              (r.alignment_reason_before || "") + "\n---\n" + (r.alignment_reason_after || ""));
    }
    if (r.memory) {
      section(box, "Memory used (round " + r.memory.round + ")", "Q: " + r.memory.question + "\nA: " + r.memory.answer);
    }
    box.appendChild(node("p", "agent model: " + r.agent_model + "; observer model: " + r.observer_model, "hint"));
  }

  function tableRow(cells, tag) {
    var tr = node("tr");
    cells.forEach(function (c) { tr.appendChild(node(tag || "td", c)); });
    return tr;
  }

  function legend() {
    var box = el("legend");
    box.appendChild(node("div", "alignment:"));
    for (var s = 1; s <= 7; s++) {
      var swatch = node("span", String(s));
      swatch.style.background = colour(s);
      box.appendChild(swatch);
    }
  }

  function setRound(pos) {
    state.roundPos = Math.max(0, Math.min(data.rounds.length - 1, pos));
    el("round").value = String(state.roundPos);
    renderGrid();
    renderDetail();
  }

  fillSelectors();
  legend();
  el("world").addEventListener("change", function () { state.world = Number(el("world").value); setRound(state.roundPos); });
  el("round").addEventListener("change", function () { setRound(Number(el("round").value)); });
  el("prev").addEventListener("click", function () { setRound(state.roundPos - 1); });
  el("next").addEventListener("click", function () { setRound(state.roundPos + 1); });
  el("colour").addEventListener("change", renderGrid);
  setRound(0);
  document.body.dataset.ready = "1";
})();
"""

def viewer_data(rows, grid_size: int | None = None, title: str = "Society transcript") -> dict:
  """The JSON the page embeds: grid size, rounds, worlds and one compact record per row."""
  rows = load_transcript(rows)
  n = infer_grid_size(rows) if grid_size is None else int(grid_size)
  worlds, records, seen = {}, [], set()
  for row in rows:
    if not 0 <= row.agent_id < n * n:
      raise ValueError(f"agent_id {row.agent_id} is outside a {n}x{n} grid")
    key = (row.world_index, row.round, row.agent_id)
    if key in seen:
      raise ValueError(f"two transcript rows for world {key[0]}, round {key[1]}, agent {key[2]}")
    seen.add(key)
    worlds.setdefault(row.world_index, {"index": row.world_index, "name": row.world, "seed": row.seed})
    records.append({
        "world": row.world_index, "round": row.round, "agent": row.agent_id, "label": row.label,
        "question": row.question, "draft": row.draft_answer, "revised": row.revised_answer,
        "raters": [{"id": t, "rating": r, "argmax": a, "reason": f}
                   for t, r, a, f in zip(row.target_id, row.rating, row.rating_argmax, row.feedback)],
        "average": row.extras.get("average_rating", sum(row.rating) / len(row.rating) if row.rating else None),
        "alignment_before": row.gen_moral_score_before, "alignment_after": row.gen_moral_score_after,
        "alignment_reason_before": row.gen_moral_reason_before,
        "alignment_reason_after": row.gen_moral_reason_after,
        "engagement_before": row.gen_engagement_score_before,
        "engagement_after": row.gen_engagement_score_after,
        "memory": None if row.memory_used is None else {
            "question": row.memory_used.question, "answer": row.memory_used.answer,
            "round": row.memory_used.round},
        "agent_model": row.agent_model, "observer_model": row.observer_model})
  return _valid({"title": title, "grid_size": n, "rounds": sorted({row.round for row in rows}),
                 "worlds": [worlds[k] for k in sorted(worlds)], "records": records})


def _valid(obj):
  if isinstance(obj, str):
    return valid_unicode(obj)
  if isinstance(obj, dict):
    return {key: _valid(value) for key, value in obj.items()}
  if isinstance(obj, list):
    return [_valid(value) for value in obj]
  return obj


def embed_json(data) -> str:
  """JSON safe inside <script type="application/json">: no '<', '>' or '&' characters."""
  text = json.dumps(data, ensure_ascii=True, allow_nan=False)
  return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def viewer_html(transcript, grid_size: int | None = None, title: str = "Society transcript") -> str:
  """The whole page as a string (see module docstring)."""
  data = viewer_data(transcript, grid_size, title)
  parts = {"TITLE": html.escape(visible(title)), "STYLE": STYLE, "SCRIPT": SCRIPT, "DATA": embed_json(data)}
  return re.sub(r"__(TITLE|STYLE|SCRIPT|DATA)__", lambda m: parts[m.group(1)], PAGE)


def write_viewer(transcript, out_path, grid_size: int | None = None,
                 title: str = "Society transcript") -> pathlib.Path:
  """Writes the viewer page for `transcript` (a file, run directory or rows) atomically."""
  out_path = pathlib.Path(out_path)
  atomic_write_text(out_path, viewer_html(transcript, grid_size, title))
  return out_path
