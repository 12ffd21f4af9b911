"""Discrepancy records, campaigns, HTML reports and the ``backprop-check`` command line."""

from reports.records import Record, RecordWriter, read_records

__all__ = ["Record", "RecordWriter", "read_records"]
