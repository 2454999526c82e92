"""Persistence: SQLAlchemy models, the database engine, Alembic migrations and the blob store.

Nothing here knows about HTTP or roles; ``medrisk.platform`` holds the rules.
"""
