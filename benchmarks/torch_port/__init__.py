"""PyTorch ports of the official code's networks, DSA and training loops, written here
from the papers' descriptions, for parity tests and speed comparisons (optional extra)."""
