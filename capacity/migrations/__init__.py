"""Alembic migrations of the SQL record (run with `capacity db upgrade`)."""
