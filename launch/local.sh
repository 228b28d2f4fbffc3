#!/usr/bin/env bash
# Several processes of one run on this machine, joined by jax.distributed over loopback
# (each process has its own CPU device; the tests use this).
#
#   launch/local.sh 2 python -m dd_jax.main --config=configs/fashion_mnist_mtt.py --workdir=/tmp/run
#
# The experts must exist first (python -m dd_jax.experts with the same config and
# workdir): a multi-process run reads them, it does not train them. Each process's
# output lines are prefixed with [process i]; the first failure stops the others.
set -euo pipefail
if [[ $# -lt 2 || ! "$1" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: launch/local.sh NUM_PROCESSES COMMAND..." >&2
  exit 2
fi
n="$1"; shift
port="${DD_JAX_PORT:-$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
pids=()
for ((i = 0; i < n; i++)); do
  DD_JAX_COORDINATOR="127.0.0.1:${port}" DD_JAX_NUM_PROCESSES="${n}" DD_JAX_PROCESS_ID="${i}" \
    JAX_PLATFORMS=cpu "$@" > >(sed -u "s/^/[process ${i}] /") 2> >(sed -u "s/^/[process ${i}] /" >&2) &
  pids+=("$!")
done
status=0
for ((left = n; left > 0; left--)); do
  if ! wait -n "${pids[@]}"; then
    status=1
    kill "${pids[@]}" 2>/dev/null || true
    break
  fi
done
wait || true
exit "${status}"
