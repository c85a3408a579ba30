"""Persistence: SQLAlchemy models, engine and repositories."""
