"""Test-only kill points: named places where a test may SIGKILL the running process.

`SANDBOX_JAX_TEST_KILL_AT=<name>[#<n>]` makes the n-th (default: first) `kill_point(<name>)` this
process reaches send itself SIGKILL: a real kill (no exception, no `finally`, no flush, no atexit),
at a place a test can name, so the resume tests (tests/test_kill_resume.py) hit every stage of the
pipeline deterministically. Without the variable (always, outside those tests) it does nothing.
The points and what a kill there leaves behind are listed in docs/robustness.md.
"""

import collections
import os
import signal

KILL_AT_ENV = "SANDBOX_JAX_TEST_KILL_AT"
_reached = collections.Counter()


def kill_point(name: str) -> None:
  spec = os.environ.get(KILL_AT_ENV)
  if not spec:
    return
  target, _, nth = spec.partition("#")
  if target != name:
    return
  _reached[name] += 1
  if _reached[name] == int(nth or 1):
    os.kill(os.getpid(), signal.SIGKILL)
