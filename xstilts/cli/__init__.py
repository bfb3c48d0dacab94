"""The `xstilts` command line: main.py composes the command groups, one module each (common.py: what they share)."""
