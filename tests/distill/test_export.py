"""Image grids of a synthetic set."""
import numpy as np

from dd_jax.distill import export


def test_class_grid_has_a_row_per_class_and_squares_up_one_image_per_class():
  pixels = np.stack([np.full((4, 4, 1), i / 10, np.float32) for i in range(6)])
  grid = export.class_grid(pixels, np.array([0, 0, 0, 1, 1, 1]), 2, pad=1)
  assert grid.shape == (2 * 5 + 1, 3 * 5 + 1, 1)
  assert grid[1 + 5, 1 + 2 * 5, 0] == np.float32(0.5)     # class 1, third image
  one_each = export.class_grid(pixels[:5], np.arange(5), 5, pad=1)
  assert one_each.shape == (2 * 5 + 1, 3 * 5 + 1, 1)         # 5 classes in a 2x3 block
  assert one_each[1 + 5, 1 + 5, 0] == np.float32(0.4)        # class 4: row 1, column 1
  soft = export.class_grid(pixels[:2], np.eye(2, dtype=np.float32), 2, pad=0)
  assert soft.shape == (4, 8, 1)
