"""Orchestrator settings, from VMCLARITY_* environment variables with documented defaults."""

import os

from app import config

#: name -> (default, meaning); README's configuration table lists each.
ORCHESTRATOR_SETTINGS = {
    "VMCLARITY_PROVIDER": ("local", "where assets come from and scanners run: `local`"),
    "VMCLARITY_LOCAL_ASSETS": ("", "local provider: directories and raw disk images to scan, separated by `:`"),
    "VMCLARITY_API_URL": ("", "the API address scanners report to (default: http://<host>:<port>/api)"),
    "VMCLARITY_DELETE_POLICY": ("Always", "clean up scanner resources: Always, OnSuccess or Never"),
    "VMCLARITY_ABORT_TIMEOUT": ("600", "seconds an aborted asset scan waits for its scanner before Failed"),
    "VMCLARITY_SCANNER_EXIT_GRACE": ("5", "seconds a scanner that exited without reporting its end may still "
                                          "report before its asset scan is Failed"),
    "VMCLARITY_SCAN_TIMEOUT": ("172800", "seconds before a scan without its own timeoutSeconds fails"),
    "VMCLARITY_MAX_PARALLEL_SCANNERS": ("2", "scanners per scan when the scan config does not say"),
    "VMCLARITY_SWEEP_INTERVAL": ("30", "seconds between the scheduler's watchdog sweeps"),
    "VMCLARITY_DISCOVERY_INTERVAL": ("120", "seconds between asset discoveries"),
}


def orchestrator_settings(environ=None):
    environ = os.environ if environ is None else environ
    value = {name: environ.get(name, default) for name, (default, _) in ORCHESTRATOR_SETTINGS.items()}
    app_settings = config.from_environment(environ)
    return {
        "provider": value["VMCLARITY_PROVIDER"],
        "local_assets": [p for p in value["VMCLARITY_LOCAL_ASSETS"].split(":") if p],
        "api_url": value["VMCLARITY_API_URL"] or f"http://{app_settings['HOST']}:{app_settings['PORT']}/api",
        "delete_policy": value["VMCLARITY_DELETE_POLICY"].lower(),
        "abort_timeout": float(value["VMCLARITY_ABORT_TIMEOUT"]),
        "scanner_exit_grace": float(value["VMCLARITY_SCANNER_EXIT_GRACE"]),
        "scan_timeout": float(value["VMCLARITY_SCAN_TIMEOUT"]),
        "max_parallel_scanners": int(value["VMCLARITY_MAX_PARALLEL_SCANNERS"]),
        "sweep_interval": float(value["VMCLARITY_SWEEP_INTERVAL"]),
        "discovery_interval": float(value["VMCLARITY_DISCOVERY_INTERVAL"]),
        "data_dir": app_settings["DATA_DIR"],
    }
