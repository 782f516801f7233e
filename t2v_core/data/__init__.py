"""Training clips and evaluation first frames: synthetic (demo) and LAMP's (paper)."""
