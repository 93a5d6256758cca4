"""Workflows: orchestrate many runs through the API (hyper-parameter search, personalisation)."""
