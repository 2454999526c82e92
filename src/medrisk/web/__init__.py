"""The REST API: thin FastAPI routers over ``medrisk.platform`` (OpenAPI at /openapi.json)."""
