"""Reading a secret (the web token, the MQTT password) from its file: one rule for every secret."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def read_secret_file(path: str, key: str) -> str:
    """The secret in ``path``, stripped; a ValueError naming the setting ``key`` when the file is readable
    by group or others, or cannot be read (typically a 0600 file owned by root while the service runs as
    its own user)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ValueError(f"{key}: cannot read {path}: {exc.strerror}") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValueError(f"{key}: {path} must not be readable by group or others (chmod 600 {path})")
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{key}: cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
