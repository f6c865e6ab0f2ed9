"""Runnable modules: `python -m experiments.<name> --help`."""
