"""Training tools for static models (the `train` extra): distillation, featurising, pair training."""
