"""The scanner that runs on a scanner VM against a mounted snapshot (issue 3 builds it)."""
