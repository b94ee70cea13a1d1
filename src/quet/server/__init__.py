"""The campaign server: FastAPI app, API routers, web pages and services."""
