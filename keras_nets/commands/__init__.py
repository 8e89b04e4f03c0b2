"""Subcommands of the `keras-nets` command line."""
