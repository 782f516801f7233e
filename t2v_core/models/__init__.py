"""Preparing (downloading or creating) and loading the base, mask and metric models."""
