"""The browser front-end: ``spinesim serve`` (portal, per-user workstations, attempt store)."""
