"""Slipway: the Django project and all product code."""
