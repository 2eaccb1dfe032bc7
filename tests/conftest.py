"""Fixtures shared by every room's tests."""

from tests.support.databases import db_url

__all__ = ["db_url"]
