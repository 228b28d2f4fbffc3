"""python -m dd_jax.experts --config=configs/<file>.py[:variant] --workdir=DIR"""
from absl import app, flags
from ml_collections import config_flags

from dd_jax import cli
from dd_jax.experts import train

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Experiment config file.", lock_config=True)
flags.DEFINE_string("workdir", None, "Run folder (experts go to <workdir>/experts).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv
  cli.setup_logging()
  with cli.cli_errors():
    directory = train.train_experts(FLAGS.config, FLAGS.workdir)
  print(f"experts in {directory}")


if __name__ == "__main__":
  app.run(main)
