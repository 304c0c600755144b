"""Patient-explanation text templates, one Markdown file per procedure (see simulator/explain.py)."""
