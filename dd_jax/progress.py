"""A progress line at least every 30 s, also while the main thread waits in compiled code
(a compile, an expert epoch, one long outer step, an evaluation net).

The main thread says what it is doing (`Heartbeat.doing`, with the seconds it expects
that to take and the seconds of work after it) and notes each progress line it logs
itself (`Heartbeat.logged`); a daemon thread logs "<what>: 45s so far[ of ~120s], ETA
..." whenever no line has come for `every_s`.

  with progress.Heartbeat():
    ...
    progress.doing("expert 1/2 epoch 1/5 (compiling its program first)", then_s=600)
    run_epoch()     # a line every 30 s while it runs
    logging.info("expert 1/2 epoch 1/5: ...")
    progress.logged()

`doing` and `logged` speak to the innermost active Heartbeat (nothing happens without
one), so the code that trains experts, steps and evaluates needs no handle on it.
"""
from __future__ import annotations

import threading
import time

from absl import logging

EVERY_S = 30.0
_ACTIVE: list["Heartbeat"] = []


def doing(what: str | None, expected_s: float | None = None, then_s: float = 0.0) -> None:
  """`Heartbeat.doing` of the active heartbeat (none: nothing)."""
  if _ACTIVE:
    _ACTIVE[-1].doing(what, expected_s, then_s)


def logged() -> None:
  """`Heartbeat.logged` of the active heartbeat (none: nothing)."""
  if _ACTIVE:
    _ACTIVE[-1].logged()


def duration(seconds: float) -> str:
  """45s, 12m05s, 3h02m: what a person reads in a progress line."""
  seconds = max(int(round(seconds)), 0)
  if seconds < 60:
    return f"{seconds}s"
  if seconds < 3600:
    return f"{seconds // 60}m{seconds % 60:02d}s"
  return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Heartbeat:
  """Logs what the main thread is doing whenever it has been quiet for `every_s`."""

  def __init__(self, every_s: float | None = None):
    self.every_s = EVERY_S if every_s is None else every_s
    self._lock = threading.Lock()
    self._stop = threading.Event()
    self._thread: threading.Thread | None = None
    self._what: str | None = None
    self._since = self._last = time.perf_counter()
    self._expected: float | None = None
    self._then = 0.0

  def doing(self, what: str | None, expected_s: float | None = None,
            then_s: float = 0.0) -> None:
    """From now on the main thread does `what` (None: nothing worth a line), expected
    to take `expected_s` (None: unknown), with `then_s` seconds of work after it."""
    with self._lock:
      self._what, self._since = what, time.perf_counter()
      self._expected, self._then = expected_s, then_s

  def logged(self) -> None:
    """The main thread has just logged a progress line of its own."""
    with self._lock:
      self._last = time.perf_counter()

  def line(self, now: float) -> str | None:
    """The line due at `now` (None when nothing is going on)."""
    with self._lock:
      if self._what is None:
        return None
      elapsed = now - self._since
      text = f"{self._what}: {duration(elapsed)} so far"
      if self._expected is not None:
        left = max(self._expected - elapsed, 0.0)
        text += f" of ~{duration(self._expected)}, ETA {duration(left + self._then)}"
      elif self._then:
        text += f", then ~{duration(self._then)}"
      return text

  def _run(self) -> None:
    while not self._stop.wait(min(self.every_s, 1.0)):
      now = time.perf_counter()
      with self._lock:
        quiet = now - self._last >= self.every_s
      if quiet:
        text = self.line(now)
        if text is not None:
          logging.info("%s", text)
        self.logged()

  def __enter__(self) -> "Heartbeat":
    self.logged()
    self._thread = threading.Thread(target=self._run, name="dd_jax-heartbeat", daemon=True)
    self._thread.start()
    _ACTIVE.append(self)
    return self

  def __exit__(self, *exc) -> None:
    if self in _ACTIVE:
      _ACTIVE.remove(self)
    self._stop.set()
    if self._thread is not None:
      self._thread.join()
