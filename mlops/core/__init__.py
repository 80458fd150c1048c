"""Pure-core machine learning: features, labels, datasets, training, prediction (never Django)."""
