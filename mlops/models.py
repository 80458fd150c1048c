"""Models of the ML ops app (datasets, trained models). Empty until the ML issues land."""
