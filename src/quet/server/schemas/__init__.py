"""Pydantic shapes of the JSON API, one module per resource: XCreate / XUpdate / XPublic."""
