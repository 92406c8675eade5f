"""Persistence: SQLAlchemy models, the session factory, repositories and blob stores."""
