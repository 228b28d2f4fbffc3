"""Data: sources (tfds, IDX, arrays), preprocessing (normalise, ZCA), DSA augmentation."""
