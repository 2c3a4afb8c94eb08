"""Path checks that take a name too long for the file system as missing.

pathlib's ``exists()``, ``is_file()`` and ``is_dir()`` answer False for a missing path but raise for one whose
name is too long (ENAMETOOLONG), so a mistyped or pasted 300-character path was a traceback. ``os.path``'s
answer False for every error, a folder the user may not look into included, and then "not found" hides the
reason. These answer False for what is not there, whatever the spelling, and raise the rest (PermissionError)
for the caller's one-line message.
"""

from __future__ import annotations

import errno
import os
import stat

#: errors that mean "nothing there by that name" (pathlib's list, plus a name too long)
_ABSENT = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP, errno.ENAMETOOLONG})


def stat_or_none(path: str | os.PathLike[str]) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError as exc:
        if exc.errno in _ABSENT:
            return None
        raise
    except ValueError:  # an embedded NUL byte: no such file either
        return None


def exists(path: str | os.PathLike[str]) -> bool:
    return stat_or_none(path) is not None


def is_file(path: str | os.PathLike[str]) -> bool:
    st = stat_or_none(path)
    return st is not None and stat.S_ISREG(st.st_mode)


def is_dir(path: str | os.PathLike[str]) -> bool:
    st = stat_or_none(path)
    return st is not None and stat.S_ISDIR(st.st_mode)


def name_too_long(path: str | os.PathLike[str]) -> bool:
    """Whether the file system refuses ``path`` for its length (a part over NAME_MAX or the whole over
    PATH_MAX)."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            return exc.errno == errno.ENAMETOOLONG
    except ValueError:  # an embedded NUL: not a length problem
        return False
    else:
        return False
    # Not there: the look-up stopped at the first missing part and never measured a longer one after it
    # (--out new/<300 characters>.keras made the folder, then failed with a traceback at the first save).
    try:
        folder, name = os.path.split(os.path.abspath(os.fspath(path)))
    except OSError:  # the working folder is gone: nothing to measure against
        return False
    names = [name]
    while not os.path.isdir(folder) and os.path.dirname(folder) != folder:
        folder, name = os.path.split(folder)
        names.append(name)
    try:
        name_max = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # no answer, or no pathconf at all (Windows)
        name_max = 255
    return 0 < name_max < max(len(os.fsencode(n)) for n in names)
