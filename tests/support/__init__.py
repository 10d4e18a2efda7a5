"""Test helpers: real server processes, generated images."""
