"""Fingerprints of the synthetic set of one small fixed run per method, to show that a
restructuring changed nothing a run produces (issue 27).

  python benchmarks/synset_identity.py --out=/tmp/ident/before.json --repo=<old checkout>
  python benchmarks/synset_identity.py --out=/tmp/ident/after.json --compare=/tmp/ident/before.json
  python benchmarks/synset_identity.py --smoke     (the mtt arm only, in a temporary folder)

Each arm is `python -m dd_jax.main` run from --repo (default: this checkout) with its
Fashion-MNIST config's `runlocal` variant on a tiny generated IDX dataset (the tests'
`write_idx_dataset`: 20 train / 5 test images per class), a width-8 ConvNet, no
evaluation during the run (it does not touch the set). The fingerprint of an arm is the
SHA-256 of every array in its synset.npz (and GLaD/H-PD's latents.npz), byte for byte:
bit-identical sets have equal fingerprints. Arms already run under <root> are reused.

--resume=<root of an older run of this benchmark>: each arm's workdir from there is
copied and run again by --repo with the same command: the old workdir must be accepted
(its run.json, checkpoints and finished stages read), and the set it exports again must
equal the old one.
"""
import argparse
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402

# name -> the config argument of `--config` (all runlocal) and the arm's own flags
# (DATM/PAD's "correct" init needs experts that classify every class: more, larger steps)
LEARNT = ("--config.expert.lr=0.05", "--config.expert.batch_size=8", "--config.expert.epochs=4")
ARMS = {
    "mtt": "configs/fashion_mnist_mtt.py:runlocal",
    "datm": ("configs/fashion_mnist_pad.py:runlocal,fiex=0,fiem=0", *LEARNT),
    "pad": ("configs/fashion_mnist_pad.py:runlocal", *LEARNT),
    "ast": "configs/fashion_mnist_ast.py:runlocal",
    "seqmatch": "configs/fashion_mnist_seqmatch.py:runlocal",
    "idc": "configs/fashion_mnist_idc.py:runlocal",
    "seqmatch-idc": "configs/fashion_mnist_idc.py:runlocal,seq=1",
    "glad": "configs/fashion_mnist_hpd.py:runlocal,glad=1,prior=random",
    "hpd": "configs/fashion_mnist_hpd.py:runlocal,prior=random",
    "dc": "configs/fashion_mnist_dc.py:runlocal",
    "dm": "configs/fashion_mnist_dm.py:runlocal",
}


def fingerprint(workdir: str) -> dict[str, str]:
  """{file/array: sha256 of its dtype, shape and bytes} of the run's exported arrays."""
  out = {}
  for name in ("synset.npz", "latents.npz"):
    path = os.path.join(workdir, name)
    if os.path.exists(path):
      with np.load(path) as f:
        for key in sorted(f.files):
          a = np.ascontiguousarray(f[key])
          h = hashlib.sha256(f"{a.dtype}{a.shape}".encode() + a.tobytes())
          out[f"{name}/{key}"] = h.hexdigest()
  return out


def run_arm(repo: str, root: str, name: str, data_dir: str, resume: str = "") -> dict[str, str]:
  work = os.path.join(root, name)
  if resume and not os.path.exists(work):
    shutil.copytree(os.path.join(resume, name), work)
    os.remove(os.path.join(work, "synset.npz"))   # written again only by the run
    # a staged run's last stage record too, so that its run resumes from its checkpoint
    stages = [f for f in glob.glob(os.path.join(work, "distill", "*_*.npz"))
              if re.fullmatch(r"(subset|layer)_\d+\.npz", os.path.basename(f))]
    if stages:
      os.remove(max(stages, key=lambda f: int(re.findall(r"\d+", os.path.basename(f))[0])))
  if not os.path.exists(os.path.join(work, "synset.npz")):
    config, *own = (ARMS[name],) if isinstance(ARMS[name], str) else ARMS[name]
    cmd = [sys.executable, "-m", "dd_jax.main", f"--config={config}",
           f"--workdir={work}", "--config.data.source=idx",
           f"--config.data.data_dir={data_dir}", "--config.data.train_per_class=0",
           "--config.model.width=8", "--config.expert.batch_size=32",
           "--config.distill.eval_every=0", *own]
    with open(work + ".log", "w") as f:
      r = subprocess.run(cmd, cwd=repo, stdout=f, stderr=f)
    if r.returncode:
      sys.exit(f"{name} failed ({r.returncode}); see {work}.log")
  return fingerprint(work)


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--out", default="", help="where the fingerprints go (JSON)")
  p.add_argument("--repo", default=common.ROOT_DIR, help="the checkout to run")
  p.add_argument("--root", default="", help="workdirs (default: beside --out)")
  p.add_argument("--arms", default=",".join(ARMS))
  p.add_argument("--compare", default="", help="fingerprints to compare with (JSON)")
  p.add_argument("--resume", default="", help="resume the workdirs of an older run's root")
  common.add_smoke(p)
  a = p.parse_args()
  if a.smoke:   # one arm, in a temporary folder
    with tempfile.TemporaryDirectory(prefix="synset_identity_smoke_") as tmp:
      a.out, a.arms = os.path.join(tmp, "smoke.json"), "mtt"
      return fingerprints(a)
  if not a.out:
    p.error("--out is required")
  fingerprints(a)


def fingerprints(a) -> None:
  root = a.root or os.path.splitext(a.out)[0]
  os.makedirs(root, exist_ok=True)
  data_dir = common.tiny_idx(os.path.join(a.resume or root, "idx"))   # the old runs' data
  prints = {"repo": a.repo, "commit": common.commit(a.repo), "arms": {}}
  for name in a.arms.split(","):
    prints["arms"][name] = run_arm(a.repo, root, name, data_dir, a.resume)
    print(f"{name}: {len(prints['arms'][name])} arrays", flush=True)
  with open(a.out, "w") as f:
    json.dump(prints, f, indent=1)
  if a.compare:
    with open(a.compare) as f:
      other = json.load(f)
    differ = 0
    for name, arrays in prints["arms"].items():
      theirs = other["arms"].get(name)
      same = theirs == arrays
      differ += not same
      print(f"{name:<13} {'identical' if same else 'DIFFERENT'}"
            + ("" if same or theirs is None else
               f" ({', '.join(k for k in arrays if arrays[k] != theirs.get(k))})"))
    print(f"{len(prints['arms']) - differ} of {len(prints['arms'])} arms bit-identical to "
          f"{other['commit']}")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
  main()
