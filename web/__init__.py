"""Alur web: the thin Flask layer over `engine`."""
