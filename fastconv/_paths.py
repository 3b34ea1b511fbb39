"""Checks of the command line's output paths, made before any work is done
(a demo that trains for a minute, then cannot write its plots, wastes it)."""
import os
import tempfile

__all__ = ["output_dir_problem", "output_file_problem"]


def _probe(directory):
    """Create and remove a file in ``directory``; OSError if that fails."""
    fd, name = tempfile.mkstemp(dir=directory, prefix=".fastconv-probe-")
    os.close(fd)
    os.unlink(name)


def _why(exc):
    return exc.strerror or str(exc)


def output_dir_problem(path):
    """Why directory ``path`` cannot be used for output, or None if it can.

    It must be a writable directory, or creatable: its nearest existing
    ancestor a writable directory.  Nothing is left behind.
    """
    full = os.path.abspath(os.fspath(path))
    ancestor = full
    while not os.path.lexists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        what = "is not a directory" if ancestor == full else (
            f"cannot be created: {ancestor} is not a directory")
        return what
    try:
        _probe(ancestor)
    except OSError as exc:
        where = "" if ancestor == full else f" (in {ancestor})"
        return f"is not writable{where}: {_why(exc)}"
    return None


def output_file_problem(path):
    """Why file ``path`` cannot be written, or None if it can: its directory
    must exist and be writable, and the path must not be a directory."""
    full = os.path.abspath(os.fspath(path))
    if os.path.isdir(full):
        return "is a directory"
    parent = os.path.dirname(full)
    if not os.path.isdir(parent):
        return f"cannot be written: directory {parent} does not exist"
    try:
        _probe(parent)
    except OSError as exc:
        return f"cannot be written in {parent}: {_why(exc)}"
    if os.path.exists(full) and not os.access(full, os.W_OK):
        return "exists and is not writable"
    return None
