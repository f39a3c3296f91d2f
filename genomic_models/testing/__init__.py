"""Test utilities that ship with the package (e.g. an offline stand-in of the Hub API)."""
