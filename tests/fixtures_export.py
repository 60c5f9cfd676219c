"""Shared pytest fixtures for the export tests (imported by tests/conftest.py)."""
