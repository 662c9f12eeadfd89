"""Dramatiq actors that orchestrate scans (the orchestrator issue builds them)."""
