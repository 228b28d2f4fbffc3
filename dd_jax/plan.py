"""python -m dd_jax.plan --config=... --workdir=...: the memory a distillation run needs
per device (dd_jax.memory), told without training experts or a prior (shapes are all
it needs), and whether it fits.
"""
from dd_jax import cli
from dd_jax.distill import run


def plan_run(config, workdir: str) -> str:
  memory = run.Distiller(config, workdir, plan_only=True).memory_plan()
  verdict = "fits" if memory.fits else "does NOT fit"
  return f"{verdict}: {memory.summary()}"


def main() -> None:
  cli.run_with_config(plan_run)


if __name__ == "__main__":
  main()
