"""The article audit: every formula and listing as an executable claim, with readings, settings and verdicts."""
