"""Distillation from a config: `distill(config, workdir)` picks the run (on its own, or
a staged run: SeqMatch's subsets, H-PD's spaces), runs it and writes the report.

  python -m dd_jax.main  ->  run.distill  ->  seqmatch / hpd (staged runs)
                                          ->  loop.Distiller  ->  methods.METHODS[...]
                                                                   methods.PARAMETERIZATIONS[...]

Calls go one way: nothing below imports this module (docs/architecture.md).
"""
from __future__ import annotations

from absl import logging
import jax
import ml_collections

from dd_jax import distributed, progress, report
from dd_jax.data import pipeline
from dd_jax.distill import hpd, seqmatch
from dd_jax.distill import workdir as workdir_lib
from dd_jax.distill.loop import Distiller
from dd_jax.distill.methods import METHODS, sections_unused
from dd_jax.distill.validation import validate_run
from dd_jax.errors import require

__all__ = ["Distiller", "distill", "validate"]

# The staged runs, tried in order: (whether the config asks for it, the runner).
STAGED_RUNS = ((seqmatch.enabled, seqmatch.SequentialDistiller),
               (hpd.enabled, hpd.ProgressiveDistiller))


def validate(config: ml_collections.ConfigDict) -> None:
  """The whole config, once, before anything runs (SeqMatch: subset by subset)."""
  if seqmatch.enabled(config):
    seqmatch.validate(config)
  else:
    validate_run(config)


def sections_read(config: ml_collections.ConfigDict) -> list[str]:
  """The config sections a distillation reads: all but those owned by a method or
  parameterisation it does not use (e.g. idc with MTT)."""
  unused = set(sections_unused(config.to_dict()))
  return [k for k in config.keys() if k not in unused]


def distill(config: ml_collections.ConfigDict, workdir: str,
            prepared: pipeline.Prepared | None = None) -> str:
  """Trains missing experts, distils (resuming if the workdir has a checkpoint),
  evaluates and exports. Returns a short summary."""
  staged = [runner for wanted, runner in STAGED_RUNS if wanted(config)]
  if jax.process_count() > 1:
    d = config.distill
    method = METHODS.get(d.method)
    require(method is not None and method.multiprocess and not staged, "distributed.num_processes",
            f"{jax.process_count()} processes: multi-process runs cover trajectory "
            "matching (pixels or GLaD), not SeqMatch, H-PD, DC or DM yet",
            "run it in one process (its devices still share the work through `mesh`)")
  done = workdir_lib.finished_summary(config, workdir)
  if done is not None:
    return (f"{workdir} holds this run, finished: nothing to do (a larger "
            f"--config.distill.iterations goes on from it)\n{done}")
  runner = staged[0] if staged else Distiller
  with progress.Heartbeat():   # a line at least every 30 s, inside compiles and epochs too
    summary = runner(config, workdir, prepared).run()
  report_line = _write_report(workdir)
  # Marked finished only once the report is written: a run killed while writing it
  # resumes from its final checkpoint and writes it.
  workdir_lib.record_finished(config, workdir, summary)
  return summary + report_line


def _write_report(workdir: str) -> str:
  """The run report (dd_jax.report) on process 0: a line for the summary. The
  distilled set is already written, so a report that fails is a warning."""
  if not distributed.is_primary():
    return ""
  try:
    return f"\nreport: {report.write_report(workdir)}"
  except Exception as e:  # pylint: disable=broad-except
    logging.warning("the run report was not written (%s: %s); the run's files are "
                    "complete: try python -m dd_jax.report --workdir=%s",
                    type(e).__name__, e, workdir)
    return ""
