"""Patient-explanation text templates, one Markdown file per procedure (see frontends/explain.py)."""
