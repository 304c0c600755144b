"""Scenarios: the schema instructors author cases in, and the built-in scenario library."""
