"""Alur engine: everything that is not HTTP. Never imports Flask or `web`."""
