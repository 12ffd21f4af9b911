"""Adapters that put implementations nobody here wrote under the oracles, as subjects."""
