"""Round arrays → transcript rows (DESIGN.md §6.7): the official record, field for field, plus
rating distributions, the memory entry used, and provenance (world, seed, round, agent, models)."""

import numpy as np


def _text(tokenizer, tokens, length) -> str:
  return tokenizer.decode(np.asarray(tokens)[: int(length)])


def transcript_rows(arrays: dict, cfg, tokenizer, agent_model_name: str, observer_model_name: str) -> list[dict]:
  """One row per agent (world-major), decoded on the host after the round."""
  a = np.asarray(arrays["labels"]).shape[0]
  per_world = cfg.agents_per_world
  draft_t, draft_l = arrays["draft"]
  rev_t, rev_l = arrays["revised"]
  fb_t, fb_l = arrays["feedback"]
  mq_t, mq_l, ma_t, ma_l = arrays["memory_entry"]
  obs = arrays["observer"]
  rnd = int(arrays["round"])
  rows = []
  for g in range(a):
    world_index, agent = divmod(g, per_world)
    view, seed = cfg.worlds[world_index]
    n_raters = int(np.sum(arrays["raters_valid"][g]))
    raters = np.asarray(arrays["raters"][g])[:n_raters]
    row = {
        "world": view, "world_index": world_index, "seed": int(seed), "round": rnd, "iteration": rnd,
        "agent_id": agent, "label": "good" if bool(arrays["labels"][g]) else "bad",
        "question": arrays["question_text"][g],
        "draft_answer": _text(tokenizer, draft_t[g], draft_l[g]),
        "target_id": [int(r) % per_world for r in raters],
        "feedback": [_text(tokenizer, fb_t[g, j], fb_l[g, j]) if fb_t is not None else "" for j in range(n_raters)],
        "rating": [round(float(x), 4) for x in arrays["rating"][g][:n_raters]],
        "rating_argmax": [int(x) for x in arrays["rating_argmax"][g][:n_raters]],
        "rating_distribution": [[round(float(p), 5) for p in d] for d in arrays["rating_distribution"][g][:n_raters]],
        "average_rating": round(float(arrays["average_rating"][g]), 4),
        "revised_answer": _text(tokenizer, rev_t[g], rev_l[g]),
    }
    for name, key in (("moral", "moral"), ("engagement", "engagement")):
      for when in ("before", "after"):
        expected, argmax, dist, reason = obs[f"{key}_{when}"]
        row[f"gen_{name}_score_{when}"] = round(float(expected[g]), 4)
        row[f"gen_{name}_reason_{when}"] = "" if reason is None else _text(tokenizer, reason[0][g], reason[1][g])
        row[f"gen_{name}_argmax_{when}"] = int(argmax[g])
        row[f"gen_{name}_distribution_{when}"] = [round(float(p), 5) for p in dist[g]]
    row["memory_used"] = ({"question": _text(tokenizer, mq_t[g], mq_l[g]), "answer": _text(tokenizer, ma_t[g], ma_l[g]),
                           "round": int(arrays["memory_round"][g])} if bool(arrays["memory_hit"][g]) else None)
    row["agent_model"], row["observer_model"] = agent_model_name, observer_model_name
    rows.append(row)
  return rows
