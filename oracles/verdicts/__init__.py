"""Verdicts: the record type, tolerances derived from each oracle's noise floor, the one comparer, kink
brackets, triangulation across oracles and the Taylor test."""
