"""python -m dd_jax.evaluate --config=configs/<file>.py[:variant] --workdir=DIR

Evaluates `eval.source` ('random_real' or a synthetic-set .npz) with every architecture
in `eval.models`; prints mean +- std test accuracy over `eval.num_nets` nets.
"""
from absl import app, flags
from ml_collections import config_flags

from dd_jax import cli
from dd_jax.evaluate import run

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Experiment config file.", lock_config=True)
flags.DEFINE_string("workdir", None, "Where eval_results.json is written.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv
  cli.setup_logging()
  with cli.cli_errors():
    results = run.evaluate_from_config(FLAGS.config, FLAGS.workdir)
  for r in results:
    print(r.summary())


if __name__ == "__main__":
  app.run(main)
