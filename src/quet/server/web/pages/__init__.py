"""The web pages, one module per area; each defines `router` (app.py includes them all)."""
