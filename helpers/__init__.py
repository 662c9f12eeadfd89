"""Helper servers for scanners: vulnerability DB, exploit DB, ClamAV mirror, YARA rules."""
