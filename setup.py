"""dd_jax: dataset distillation by trajectory matching, in JAX/Flax."""
from setuptools import find_packages, setup

setup(
    name="dd_jax",
    version="0.1.0",
    description="Dataset distillation (MTT, DATM, PAD, AST, SeqMatch, GLaD/H-PD) in JAX/Flax",
    packages=find_packages(include=["dd_jax", "dd_jax.*"]),
    python_requires=">=3.10",
    install_requires=[
        "jax>=0.4.30",
        "jaxlib>=0.4.30",
        "flax>=0.10",
        "optax>=0.2",
        "orbax-checkpoint>=0.11",
        "tensorflow-datasets>=4.9.6",  # data through tfds.data_source (array_record)
        "importlib_resources",  # tfds needs it to build a dataset it downloads
        "ml-collections>=0.1.1",
        # clu's metric writers import TensorFlow and TensorBoard: TensorBoard event files
        # are part of every run, so the CPU build of TensorFlow is a core dependency. It is
        # imported only when a run starts writing metrics, with accelerators hidden.
        "clu>=0.0.12",
        "tensorflow-cpu>=2.16",
        "tensorboard>=2.16",
        "filelock",  # JAX's persistent compilation cache locks its entries with it
        "absl-py",
        "numpy",
        "pillow",
        "matplotlib",  # the plots of the run report (dd_jax.report)
    ],
    extras_require={
        "test": ["pytest>=8", "pytest-xdist>=3", "chex>=0.1.87",
                 # the notebooks run in CI
                 "nbclient>=0.10", "nbformat>=5.10", "ipykernel>=6.29"],
        # Benchmarks against faithful PyTorch ports of the official loops (CPU build).
        "torch": ["torch==2.13.0", "psutil"],
    },
)
