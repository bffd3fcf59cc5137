"""Helpers the tests share: plain functions and classes imported by name, and the fixtures that
tests/conftest.py registers as plugins. Nothing here is a test, and no test imports conftest."""
