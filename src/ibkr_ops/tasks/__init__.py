"""Invoke collections: parse arguments, call the library, report. No logic of their own."""
