"""Server-rendered web pages: templates, static assets, charts and UI strings."""
