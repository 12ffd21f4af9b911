"""Hypothesis strategies, the planted-bug catalogue and the property suite."""
