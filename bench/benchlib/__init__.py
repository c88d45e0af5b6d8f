"""Pieces of bench/run: one module per area, and what they share."""
