"""Business logic shared by the API, the web pages and the CLI (never duplicated in either)."""
