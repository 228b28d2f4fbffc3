"""A workdir that cannot be written, or a disk too full for the run: refused at the
start, before any expert, prior or step is computed, and nothing is left behind."""
import collections
import errno
import os

import pytest

from dd_jax import disk
from dd_jax.distill import run
from dd_jax.distill.methods import mtt
from dd_jax.errors import ConfigError
from dd_jax.experts import train
from tests.conftest import tiny_idx_config

Usage = collections.namedtuple("Usage", "total used free")


def _refused_before_compute(monkeypatch, config, workdir, match):
  computed = []
  monkeypatch.setattr(train, "training", None)          # no expert step can be built
  monkeypatch.setattr(mtt, "compiled_step", lambda *a, **k: computed.append(a))
  with pytest.raises(ConfigError, match=match):
    run.distill(config, workdir)
  assert not computed and not os.path.exists(workdir)


def test_a_full_disk_is_refused_with_the_estimate(idx_dir, tmp_path, monkeypatch):
  config = tiny_idx_config(idx_dir)
  with config.unlocked():
    config.expert.num_experts = 200
    config.expert.epochs = 50
  monkeypatch.setattr(disk.shutil, "disk_usage", lambda _: Usage(10 * 2**20, 0, 2**20))
  _refused_before_compute(
      monkeypatch, config, str(tmp_path / "run"),
      r"--workdir: 1 MiB free on the disk of .*/run, the run needs about \d+ MiB "
      r"\(checkpoints .*experts \d+ MiB\)\. Fix: free space")


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_a_workdir_that_cannot_be_written_is_refused(idx_dir, tmp_path, monkeypatch, code):
  def fsync(fd):
    raise OSError(code, os.strerror(code))

  monkeypatch.setattr(disk.os, "fsync", fsync)
  _refused_before_compute(monkeypatch, tiny_idx_config(idx_dir), str(tmp_path / "run"),
                          rf"--workdir: cannot write to {tmp_path} \({os.strerror(code)}\)")
  assert not [n for n in os.listdir(tmp_path) if n.startswith(".dd_jax")]   # probe removed


def test_a_workdir_below_a_file_is_refused(idx_dir, tmp_path, monkeypatch):
  (tmp_path / "plain").write_text("not a folder")
  _refused_before_compute(monkeypatch, tiny_idx_config(idx_dir),
                          str(tmp_path / "plain" / "run"), r"--workdir: .* is a file")


def test_a_writable_workdir_with_room_passes_and_leaves_no_probe(tmp_path):
  disk.check_writable(str(tmp_path / "new" / "run"))
  disk.check_space(str(tmp_path), {"x": 1}, "--workdir", "")
  assert os.listdir(tmp_path) == []
