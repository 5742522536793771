"""Experiments: datasets, standard vs Mixup training, measurements, figures and the CLI."""
