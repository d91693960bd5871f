"""Viewing a reconstruction directory: interactive (viser, optional) or a software screenshot."""
