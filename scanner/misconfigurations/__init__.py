"""The misconfiguration family: our own checks (`native`) and, when listed, `lynis`.

- `native` (scanner.misconfigurations.native): sshd, accounts, sudo, cron, kernel
  parameters and file modes, read from the shared walk. On by default.
- `lynis` (scanner.misconfigurations.lynis): `lynis audit system --rootdir`, findings about
  the target only. Off by default: it touches the machine it runs on.
"""

from scanner.misconfigurations.lynis import LynisScanner
from scanner.misconfigurations.native import NativeScanner

__all__ = ["LynisScanner", "NativeScanner"]
