"""Diagnosis: what is wrong with a failing subject (conventions, defect models fitted on probes, the
family of architectures a subject supports)."""
