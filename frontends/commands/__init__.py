"""Subcommands of the ``spinesim`` command line, one module per command group."""
