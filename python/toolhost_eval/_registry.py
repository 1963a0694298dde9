"""Imported by Inspect through the `inspect_ai` entry point: registers the toolhost sandbox."""
from . import inspect_sandbox  # noqa: F401
