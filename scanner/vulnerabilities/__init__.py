"""Vulnerability scanners of the scanner's `vulnerabilities` family (see `osv`)."""
