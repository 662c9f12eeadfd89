"""The rootkit family: `chkrootkit` (scanner.rootkits.chkrootkit), run on a private read-only view."""

from scanner.rootkits.chkrootkit import ChkrootkitScanner

__all__ = ["ChkrootkitScanner"]
