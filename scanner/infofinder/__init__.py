"""The infoFinder family: facts about a machine that are not findings by themselves.

Today one scanner, `sshTopology` (scanner.infofinder.ssh_topology), which reports the
SSH keys that tie machines together: host keys, authorized keys, known hosts and
private keys, as SHA256 fingerprints.
"""

from scanner.infofinder.ssh_topology import SshTopologyScanner

__all__ = ["SshTopologyScanner"]
