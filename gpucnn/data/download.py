"""Downloads into the data folder: streamed to a temporary file, checked, then renamed into place.

A file only ever appears under its final name once its checksum matched, so an interrupted or
corrupted download never looks like a dataset file.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from .base import DatasetError

CHUNK = 1 << 20
TIMEOUT_S = 30


def file_digest(path, algorithm: str = "md5") -> str:
    """The hex digest of a file's bytes."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, destination, md5: str | None = None, sha256: str | None = None,
             timeout: float = TIMEOUT_S, log=None) -> Path:
    """Fetches ``url`` to ``destination`` after checking its MD5 and/or SHA-256.

    Raises:
        OSError: the host cannot be reached or the transfer failed (``urllib.error.URLError`` is one).
        DatasetError: the bytes arrived but their checksum is wrong; nothing is left behind.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    if log is not None:
        log(f"downloading {url} -> {destination}")
    digests = {name: hashlib.new(name) for name, expected in (("md5", md5), ("sha256", sha256)) if expected}
    handle, temporary = tempfile.mkstemp(dir=destination.parent, prefix=destination.name + ".", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as output, urllib.request.urlopen(url, timeout=timeout) as response:
            for block in iter(lambda: response.read(CHUNK), b""):
                output.write(block)
                for digest in digests.values():
                    digest.update(block)
            output.flush()
            os.fsync(output.fileno())
        for name, expected in (("md5", md5), ("sha256", sha256)):
            if expected and digests[name].hexdigest() != expected.lower():
                raise DatasetError(f"{url}: {name} checksum {digests[name].hexdigest()} does not match the "
                                   f"published {expected}; the download was discarded")
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return destination


def fetch(name: str, folder, mirrors, md5: str | None = None, sha256: str | None = None, log=None) -> Path:
    """Downloads ``name`` from the first of ``mirrors`` (base URLs ending in '/') that works.

    Raises:
        DatasetError: every mirror failed; the message gives each mirror's reason.
    """
    reasons = []
    for base in mirrors:
        try:
            return download(base + name, Path(folder) / name, md5=md5, sha256=sha256, log=log)
        except (OSError, DatasetError) as error:
            reason = getattr(error, "reason", None) or error
            reasons.append(f"{base + name}: {reason}")
    raise DatasetError("; ".join(reasons))


def stderr_log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
