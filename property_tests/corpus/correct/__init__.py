"""Correct implementations in different styles, each a subject ``gradients(spec, params, X, Y)``."""
