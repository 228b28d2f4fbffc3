"""python -m dd_jax.evaluate --config=configs/<file>.py[:variant] --workdir=DIR

Evaluates `eval.source` ('random_real' or a synthetic-set .npz) with every architecture
in `eval.models`; prints mean +- std test accuracy over `eval.num_nets` nets and writes
<workdir>/eval_results.json.
"""
from dd_jax import cli
from dd_jax.evaluate import run

if __name__ == "__main__":
  cli.run_with_config(lambda config, workdir: "\n".join(
      r.summary() for r in run.evaluate_from_config(config, workdir)),
      reads=run.SECTIONS_READ)
