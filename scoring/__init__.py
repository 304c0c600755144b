"""Scoring: metrics, safety rules, grades and reports, as pure functions of (scenario, anatomy, log)."""
