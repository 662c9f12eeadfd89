"""Saving an HTTP download safely: bounded in size, checked, then swapped in whole."""

import os
import tempfile

CHUNK = 1024**2


def save(response, destination, max_bytes, check=None, too_large=ValueError):
    """Stream `response` to `destination` through a temporary file in the same directory.

    Raises `too_large` past `max_bytes`; `check(path)` may raise to refuse the
    content. `destination` is replaced only by a complete, accepted file.
    """
    directory = os.path.dirname(os.fspath(destination)) or "."
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".download-")
    try:
        with os.fdopen(handle, "wb") as out:
            size = 0
            while chunk := response.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise too_large(f"the download is larger than {max_bytes} bytes")
                out.write(chunk)
        if check is not None:
            check(temporary)
        os.replace(temporary, destination)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
