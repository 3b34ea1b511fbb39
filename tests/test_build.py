"""The installed package: compiled extension present, settings, public names."""

import importlib.machinery
import importlib.metadata
import inspect
import os
import subprocess
import sys

import pytest

import fastconv
import fastconv.reference

# The kernels: every name that has a NumPy twin.  tests/test_contracts.py
# checks that these are exactly the kernels of fastconv.__all__.
API = list(fastconv.reference.__all__)
SETTINGS = ["set_num_threads", "get_num_threads", "show_config"]


def test_ext_is_a_compiled_extension_module():
    ext = fastconv._ext
    path = ext.__file__
    assert path is not None
    assert path.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)), (
        f"fastconv._ext was loaded from {path!r}, which is not a compiled extension "
        f"(suffixes {importlib.machinery.EXTENSION_SUFFIXES})"
    )
    assert os.path.isfile(path)
    assert isinstance(ext.__loader__, importlib.machinery.ExtensionFileLoader)


def test_package_imported_together_with_its_extension():
    # The package must come from a tree that holds the built extension: either an
    # installed wheel in site-packages or an in-place (editable) build.  A bare
    # source checkout would have no _ext next to __init__.py and fail to import.
    pkg_dir = os.path.dirname(os.path.abspath(fastconv.__file__))
    ext_dir = os.path.dirname(os.path.abspath(fastconv._ext.__file__))
    assert os.path.samefile(pkg_dir, ext_dir), (
        f"fastconv imported from {pkg_dir} but its extension from {ext_dir}"
    )
    # The extension is importable by its full name and is the same module object.
    ext = importlib.import_module("fastconv._ext")
    assert ext is fastconv._ext


def test_reference_is_pure_python():
    ref = fastconv.reference
    assert ref.__file__.endswith(".py"), ref.__file__
    for name in API:
        assert getattr(fastconv, name) is not getattr(ref, name), name


@pytest.mark.parametrize("name", API + SETTINGS)
def test_public_name_exported(name):
    assert callable(getattr(fastconv, name))
    assert name in fastconv.__all__


@pytest.mark.parametrize("name", API)
def test_reference_twin_has_same_signature(name):
    fast = inspect.signature(getattr(fastconv, name))
    slow = inspect.signature(getattr(fastconv.reference, name))
    as_list = lambda sig: [  # noqa: E731
        (p.name, p.kind, p.default) for p in sig.parameters.values()
    ]
    assert as_list(fast) == as_list(slow), f"{name}: {fast} != {slow}"


def test_signature_defaults_follow_api():
    sig = inspect.signature(fastconv.conv2d)
    assert sig.parameters["algorithm"].default == "auto"
    assert sig.parameters["algorithm"].kind is inspect.Parameter.KEYWORD_ONLY
    assert sig.parameters["groups"].default == 1
    sig = inspect.signature(fastconv.conv2d_backward)
    assert sig.parameters["algorithm"].default == "auto"
    sig = inspect.signature(fastconv.max_pool2d)
    assert sig.parameters["stride"].default is None
    assert sig.parameters["return_indices"].default is False
    sig = inspect.signature(fastconv.avg_pool2d)
    assert sig.parameters["count_include_pad"].default is True


def test_openmp_enabled_returns_bool():
    assert type(fastconv._ext.openmp_enabled()) is bool


def test_version_matches_metadata():
    assert fastconv.__version__ == importlib.metadata.version("fastconv")


def test_show_config_prints_version(capsys):
    fastconv.show_config()
    out = capsys.readouterr().out
    assert out.strip(), "show_config() printed nothing"
    assert importlib.metadata.version("fastconv") in out, out


def test_threads_round_trip(restore_threads):
    for n in (1, 2, 3, 1):
        fastconv.set_num_threads(n)
        assert fastconv.get_num_threads() == n


@pytest.mark.parametrize("bad", [0, -1, -8])
def test_set_num_threads_rejects_below_one(bad, restore_threads):
    before = fastconv.get_num_threads()
    with pytest.raises(ValueError, match=r"\bn\b|num_threads"):
        fastconv.set_num_threads(bad)
    assert fastconv.get_num_threads() == before, "a rejected call changed the setting"


def _fresh_thread_count(tmp_path, env_update, drop=()):
    env = dict(os.environ)
    for key in drop:
        env.pop(key, None)
    env.update(env_update)
    # Run from an empty directory so the checkout is not on sys.path.
    res = subprocess.run(
        [sys.executable, "-c", "import fastconv; print(fastconv.get_num_threads())"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    return int(res.stdout.strip().splitlines()[-1])


# A serial build (no OpenMP: FASTCONV_NO_OPENMP=1, macOS wheels) runs one thread.
def test_default_threads_follow_omp_num_threads(tmp_path):
    expected = 3 if fastconv._ext.openmp_enabled() else 1
    assert _fresh_thread_count(tmp_path, {"OMP_NUM_THREADS": "3"}) == expected


def test_default_threads_without_env_is_core_count(tmp_path):
    n = _fresh_thread_count(tmp_path, {}, drop=("OMP_NUM_THREADS",))
    cores = {os.cpu_count()}
    if hasattr(os, "sched_getaffinity"):
        cores.add(len(os.sched_getaffinity(0)))
    if not fastconv._ext.openmp_enabled():
        cores = {1}
    assert n in cores, f"default thread count {n}, core count {cores}"
