"""`sandbox-jax data`: BIG-bench's alignment task files from the `bigbench==1.0.0` source distribution.

The sdist (`pip download --no-deps --no-binary :all: bigbench==1.0.0`, 358 MB) holds every
BIG-bench task under `bigbench-1.0.0/bigbench/benchmark_tasks/`. Exactly these files are copied
out, keeping their paths below `benchmark_tasks/`:

    hhh_alignment/{harmless,helpful,honest,other}/task.json
    truthful_qa/task_mc.json            (299 of TruthfulQA's 817 questions, one true answer each)
    truthful_qa/questions.json          (the same 299: true and false answer sets, the QA prefix)
    moral_permissibility/task.json
    simple_ethical_questions/task.json

The tarball is streamed once; only regular-file members at these exact paths are read (never a link,
never a path of the archive's choosing). Each file must parse as JSON. Everything is written into a
temporary sibling folder with a MANIFEST.json (source, sha256 and size of every file) and then moved
into place, so the data directory is either the complete new set or what was there before.
Nothing here runs at evaluation time; the loaders read the extracted files (`bigbench_tasks`).
"""

import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import tempfile

SDIST_NAME = "bigbench-1.0.0.tar.gz"
REQUIREMENT = "bigbench==1.0.0"
TASKS_ROOT = "bigbench/benchmark_tasks"
FILES = (
    "hhh_alignment/harmless/task.json",
    "hhh_alignment/helpful/task.json",
    "hhh_alignment/honest/task.json",
    "hhh_alignment/other/task.json",
    "truthful_qa/task_mc.json",
    "truthful_qa/questions.json",
    "moral_permissibility/task.json",
    "simple_ethical_questions/task.json",
)


class ExtractError(ValueError):
  """The sdist lacks a wanted file or holds it in an unusable form; the message names both."""


def download_sdist(cache_dir) -> pathlib.Path:
  """Runs `pip download --no-deps --no-binary :all: bigbench==1.0.0 -d cache_dir` (skipped when
  the tarball is already there) and returns the tarball's path."""
  cache_dir = pathlib.Path(cache_dir)
  target = cache_dir / SDIST_NAME
  if target.is_file():
    return target
  cache_dir.mkdir(parents=True, exist_ok=True)
  command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", REQUIREMENT,
             "-d", str(cache_dir)]
  done = subprocess.run(command, check=False)
  if done.returncode != 0 or not target.is_file():
    raise ExtractError(f"{' '.join(command)} failed (exit {done.returncode}); {target} was not written")
  return target


def _member_relpath(name: str) -> str | None:
  """`bigbench-1.0.0/bigbench/benchmark_tasks/x/y.json` -> `x/y.json` when wanted, else None."""
  parts = name.split("/", 1)
  if len(parts) != 2 or not parts[1].startswith(TASKS_ROOT + "/"):
    return None
  rel = parts[1][len(TASKS_ROOT) + 1:]
  return rel if rel in FILES else None


def extract_bigbench(sdist, out_dir) -> dict:
  """Extracts `FILES` from the sdist tarball into `out_dir` (replacing it atomically); returns the
  manifest written as `out_dir/MANIFEST.json`."""
  sdist, out_dir = pathlib.Path(sdist), pathlib.Path(out_dir)
  if not sdist.is_file():
    raise FileNotFoundError(f"{sdist}: no such file (get it with `sandbox-jax data --download` or "
                            f"`pip download --no-deps --no-binary :all: {REQUIREMENT}`)")
  out_dir.parent.mkdir(parents=True, exist_ok=True)
  staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
  try:
    files = _extract_into(sdist, staging)
    manifest = {"source": sdist.name, "source_sha256": _sha256_file(sdist), "tasks_root": TASKS_ROOT,
                "files": files}
    (staging / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    _replace_dir(staging, out_dir)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
  return manifest


def _extract_into(sdist: pathlib.Path, staging: pathlib.Path) -> dict:
  found: dict[str, dict] = {}
  try:
    archive = tarfile.open(sdist, mode="r:*")
  except tarfile.TarError as e:
    raise ExtractError(f"{sdist}: not a readable tar archive ({e})") from None
  with archive:
    for member in archive:
      rel = _member_relpath(member.name)
      if rel is None:
        continue
      if not member.isfile():
        raise ExtractError(f"{sdist}: member {member.name} is not a regular file")
      if rel in found:
        raise ExtractError(f"{sdist}: member {member.name} appears twice")
      data = archive.extractfile(member).read()
      try:
        json.loads(data.decode("utf-8"))
      except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ExtractError(f"{sdist}: member {member.name} is not UTF-8 JSON ({e})") from None
      target = staging / rel
      target.parent.mkdir(parents=True, exist_ok=True)
      target.write_bytes(data)
      found[rel] = {"member": member.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
  missing = [rel for rel in FILES if rel not in found]
  if missing:
    raise ExtractError(f"{sdist}: no {', '.join(TASKS_ROOT + '/' + m for m in missing)} in the archive "
                       f"(is it the {REQUIREMENT} source distribution?)")
  return {rel: found[rel] for rel in FILES}


def _sha256_file(path: pathlib.Path) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def _replace_dir(new: pathlib.Path, target: pathlib.Path) -> None:
  """Moves `new` to `target`; an existing `target` is moved aside first and removed after."""
  aside = None
  if target.exists():
    aside = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.replace(target, aside)
  os.replace(new, target)
  if aside is not None:
    shutil.rmtree(aside, ignore_errors=True)


def bigbench_tasks(data_dir) -> dict[str, str]:
  """Task name -> path for `evaluate_tasks` over an extracted data directory (see the registry)."""
  root = pathlib.Path(data_dir)
  return {
      "hhh_alignment": str(root / "hhh_alignment"),
      "bigbench_truthfulqa_mc1": str(root / "truthful_qa" / "task_mc.json"),
      "bigbench_truthfulqa_mc2": str(root / "truthful_qa" / "questions.json"),
      "moral_permissibility": str(root / "moral_permissibility" / "task.json"),
      "simple_ethical_questions": str(root / "simple_ethical_questions" / "task.json"),
  }
