"""python -m dd_jax.main --config=configs/<dataset>_<method>.py[:variant] --workdir=DIR

Trains the experts the config asks for (unless they exist), distils, evaluates every
`distill.eval_every` steps and writes the synthetic set; started again with the same
workdir, it resumes from the latest checkpoint.
"""
from dd_jax import cli
from dd_jax.distill import run


def main() -> None:
  cli.run_with_config(run.distill, reads=run.sections_read)


if __name__ == "__main__":
  main()
