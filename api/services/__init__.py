"""Orchestration shared by the JSON API and the console (routes stay thin)."""
