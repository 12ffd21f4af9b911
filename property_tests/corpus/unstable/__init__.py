"""Numerically unstable implementations: right in exact arithmetic, NaN/inf or overflow in float64."""
