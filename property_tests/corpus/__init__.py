"""Held-out material: backprop implementations written independently of the reference, in the styles
people really use, that the suite's verdicts and diagnoses are measured on but never tuned to.

``correct/`` holds right implementations (no verdict may flag them), ``unstable/`` numerically unstable
ones (mathematically right, broken in float64 somewhere the truth is finite).
"""
