"""Mutation analysis: the catalogue of planted bugs and the kill matrix that proves the checks bite."""
