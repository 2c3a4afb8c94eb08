"""Secrets: reading one (the web token, the MQTT password) from its file, one rule for every secret; and
hiding the password of a URL (an RTSP camera, an MQTT broker) wherever the URL is shown."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

# the password runs to the last @ before the path: an unencoded @ in it must not leave its tail showing
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*):[^/\s]*@")
# many IP cameras take it in the query instead: videostream.cgi?user=admin&pwd=... A name ending in one of the
# long words is a secret (passkey, auth_token, client_secret, user_password); a short one (key, pass, pw, auth,
# sig) only whole or after a separator (api-key, access_key), so keyframe= or bypass= stay readable.
_QUERY_PASSWORD = re.compile(
    r"([?&;](?:[\w.-]*(?:password|passwd|passphrase|passkey|pwd|token|secret|apikey|signature)"
    r"|(?:[\w.-]*[_.-])?(?:pass|pw|key|auth|sig))=)[^&#;\s]*", re.I)


def redact(text: str) -> str:
    """``scheme://user:password@host/...`` and ``...?pwd=password`` with the password replaced by ``***``:
    for logs, events, pages."""
    return _QUERY_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1:***@", text))


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
