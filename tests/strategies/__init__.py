"""Shared Hypothesis strategies, one module per area (data, model, timeline)."""
