"""Shared pytest fixtures for the detector tests (imported by tests/conftest.py)."""
