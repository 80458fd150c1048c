"""Pure-core ML: features, labels, datasets, walk-forward, training, artifacts, prediction (no Django)."""
