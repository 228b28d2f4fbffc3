"""Expert trajectories: training on real data (train.py) and Orbax storage (store.py)."""
