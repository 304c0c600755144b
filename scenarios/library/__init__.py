"""Built-in scenarios (YAML, package data); see :mod:`scenarios.schema`."""
