"""DSA (DiffAugment with per-sample parameters) in PyTorch, NCHW, as the official code
applies it: one op family per call, chosen at random, parameters per sample."""
import numpy as np
import torch
import torch.nn.functional as F

SCALE, ROTATE, CROP, CUTOUT = 1.2, 15.0, 0.125, 0.5


def brightness(x):
  return x + (torch.rand(x.size(0), 1, 1, 1, dtype=x.dtype) - 0.5)


def saturation(x):
  mean = x.mean(dim=1, keepdim=True)
  return (x - mean) * (torch.rand(x.size(0), 1, 1, 1, dtype=x.dtype) * 2) + mean


def contrast(x):
  mean = x.mean(dim=[1, 2, 3], keepdim=True)
  return (x - mean) * (torch.rand(x.size(0), 1, 1, 1, dtype=x.dtype) + 0.5) + mean


def crop(x):
  n, _, h, w = x.shape
  sh, sw = int(h * CROP + 0.5), int(w * CROP + 0.5)
  tx = torch.randint(-sh, sh + 1, size=(n, 1, 1))
  ty = torch.randint(-sw, sw + 1, size=(n, 1, 1))
  gb, gx, gy = torch.meshgrid(torch.arange(n), torch.arange(h), torch.arange(w),
                              indexing="ij")
  gx = torch.clamp(gx + tx + 1, 0, h + 1)
  gy = torch.clamp(gy + ty + 1, 0, w + 1)
  padded = F.pad(x, [1, 1, 1, 1, 0, 0, 0, 0])
  return padded.permute(0, 2, 3, 1).contiguous()[gb, gx, gy].permute(0, 3, 1, 2)


def cutout(x):
  n, _, h, w = x.shape
  ch, cw = int(h * CUTOUT + 0.5), int(w * CUTOUT + 0.5)
  ox = torch.randint(0, h + (1 - ch % 2), size=(n, 1, 1))
  oy = torch.randint(0, w + (1 - cw % 2), size=(n, 1, 1))
  gb, gx, gy = torch.meshgrid(torch.arange(n), torch.arange(ch), torch.arange(cw),
                              indexing="ij")
  gx = torch.clamp(gx + ox - ch // 2, 0, h - 1)
  gy = torch.clamp(gy + oy - cw // 2, 0, w - 1)
  mask = torch.ones(n, h, w, dtype=x.dtype)
  mask[gb, gx, gy] = 0
  return x * mask.unsqueeze(1)


def flip(x):
  do = torch.rand(x.size(0), 1, 1, 1) < 0.5
  return torch.where(do, x.flip(3), x)


def _affine(x, theta):
  grid = F.affine_grid(theta, x.shape, align_corners=True)
  return F.grid_sample(x, grid, align_corners=True)


def scale(x):
  n = x.size(0)
  sx = torch.rand(n) * (SCALE - 1 / SCALE) + 1 / SCALE
  sy = torch.rand(n) * (SCALE - 1 / SCALE) + 1 / SCALE
  theta = torch.zeros(n, 2, 3, dtype=x.dtype)
  theta[:, 0, 0], theta[:, 1, 1] = sx, sy
  return _affine(x, theta)


def rotate(x):
  n = x.size(0)
  t = (torch.rand(n) - 0.5) * 2 * ROTATE / 180 * np.pi
  theta = torch.zeros(n, 2, 3, dtype=x.dtype)
  theta[:, 0, 0], theta[:, 0, 1] = torch.cos(t), torch.sin(t)
  theta[:, 1, 0], theta[:, 1, 1] = -torch.sin(t), torch.cos(t)
  return _affine(x, theta)


OPS = {"color": [brightness, saturation, contrast], "crop": [crop], "cutout": [cutout],
       "flip": [flip], "scale": [scale], "rotate": [rotate]}


def dsa(x, strategy="color_crop_cutout_flip_scale_rotate"):
  names = strategy.split("_")
  for fn in OPS[names[torch.randint(0, len(names), size=(1,)).item()]]:
    x = fn(x)
  return x
