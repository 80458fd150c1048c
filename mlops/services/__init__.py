"""Services of the ML ops app: the registry (activate / deactivate / rollback / promote) and
training jobs. All writes to ``mlops`` models go through these functions."""
