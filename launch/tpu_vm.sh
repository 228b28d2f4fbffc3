#!/usr/bin/env bash
# One run on every host of a Cloud TPU VM slice: the same command on all workers; JAX
# finds the slice's processes itself (DD_JAX_AUTO=1 -> jax.distributed.initialize()).
#
#   launch/tpu_vm.sh TPU_NAME ZONE --config=configs/cifar100_mtt.py:ipc=10 --workdir=gs://bucket/c100
#
# Assumes dd_jax is installed on every worker in ~/dd_jax (pip install -e ~/dd_jax) and the
# workdir is shared (a GCS bucket). Train the experts first (python -m dd_jax.experts on
# one worker, same config and workdir).
set -euo pipefail
if [[ $# -lt 3 ]]; then
  echo "usage: launch/tpu_vm.sh TPU_NAME ZONE FLAGS..." >&2
  exit 2
fi
name="$1"; zone="$2"; shift 2
gcloud compute tpus tpu-vm ssh "${name}" --zone "${zone}" --worker=all \
  --command "cd ~/dd_jax && DD_JAX_AUTO=1 python -m dd_jax.main $(printf '%q ' "$@")"
