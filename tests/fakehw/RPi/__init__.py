"""Fake ``RPi`` package: only ``RPi.GPIO`` (see tests/fakehw/__init__.py)."""
