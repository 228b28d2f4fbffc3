"""python -m dd_jax.experts --config=configs/<file>.py[:variant] --workdir=DIR

Trains (or finishes) expert trajectories into `expert.dir` (default <workdir>/experts).
"""
from dd_jax import cli
from dd_jax.experts import train

if __name__ == "__main__":
  cli.run_with_config(lambda config, workdir:
                      f"experts in {train.train_experts(config, workdir)}",
                      reads=train.SECTIONS_READ)
