"""Numeric ground truths: a vectorised perturbed-forward evaluator and the three oracles built on it
(central differences, Richardson extrapolation, complex step)."""
