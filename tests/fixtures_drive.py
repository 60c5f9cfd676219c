"""Shared pytest fixtures for the drive tests (imported by tests/conftest.py)."""
