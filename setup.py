"""The extension list of fastconv; all metadata lives in pyproject.toml.

The plain C kernels of src_c/ are built first as a static library with strict
warnings, then linked into the one Cython extension, fastconv._ext.  Release
builds carry no debug information and no run-time library path.  Flags that
not every compiler knows (-fopenmp, GCC's loop options) are probed first.

Environment variables:
FASTCONV_WERROR=1   warnings in the C kernels are errors (CI, development);
                    users' builds only warn.
FASTCONV_DEBUG=1    Cython's bounds checks, -O0 -g, AddressSanitizer/UBSan.
FASTCONV_NO_OPENMP=1  serial kernels even where the compiler has OpenMP.
FASTCONV_NO_CLONES=1  no target_clones: the hot loops only in their baseline
                    (-O3, no -march) version, as on non-GCC or non-x86-64
                    builds; CI tests this build too (src_c/README.md).
CC, CFLAGS, LDSHARED  as for any setuptools build (CC=clang works).
"""
import contextlib
import os
import sys
import tempfile

if sys.platform == "win32":
    sys.exit("fastconv does not support Windows yet: its kernels need a GCC- or "
             "clang-compatible C compiler (MSVC has no C99 'restrict' arrays or "
             "GCC function attributes). Use Linux, macOS, or WSL on Windows.")

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools._distutils.ccompiler import new_compiler
from setuptools._distutils.sysconfig import customize_compiler
from setuptools.command.build_ext import build_ext

DEBUG = os.environ.get("FASTCONV_DEBUG", "0") == "1"
WERROR = os.environ.get("FASTCONV_WERROR", "0") == "1"
NO_CLONES = os.environ.get("FASTCONV_NO_CLONES", "0") == "1"
C_SOURCES = [
    "src_c/im2col.c", "src_c/conv2d.c", "src_c/pool.c", "src_c/gemm.c",
    "src_c/ukernel.c", "src_c/threads.c", "src_c/vol.c", "src_c/local.c",
    "src_c/winograd.c", "src_c/norm.c", "src_c/eltwise.c", "src_c/linear.c",
]
C_DEPENDS = [
    "src_c/fastconv.h", "src_c/common.h", "src_c/templating.h",
    "src_c/ukernel.h", "src_c/im2col_row.tmpl.h", "src_c/im2col.tmpl.h",
    "src_c/conv2d.tmpl.h", "src_c/pool.tmpl.h", "src_c/pool_tap.tmpl.h",
    "src_c/gemm.tmpl.h", "src_c/ukernel.tmpl.h", "src_c/vol.tmpl.h",
    "src_c/local.tmpl.h", "src_c/winograd.tmpl.h", "src_c/norm.tmpl.h",
    "src_c/eltwise.tmpl.h", "src_c/linear.tmpl.h", "src_c/threads.tmpl.h",
]
SANITIZE = ["-fsanitize=address,undefined"]


@contextlib.contextmanager
def _quiet():
    """Silence the compiler's own messages (fd level) while probing."""
    saved = [os.dup(1), os.dup(2)]
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def accepts(cflags, ldflags=(), code="int main(void){return 0;}\n"):
    """Whether this build's compiler compiles and links ``code`` with the flags.

    -Werror makes compilers that merely warn about an unknown option (clang
    for some -f options) count as not knowing it.
    """
    compiler = new_compiler()
    customize_compiler(compiler)
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(code)
        try:
            with _quiet():
                objs = compiler.compile([src], output_dir=tmp,
                                        extra_postargs=[*cflags, "-Werror"])
                compiler.link_executable(objs, "probe", output_dir=tmp,
                                         extra_postargs=[*cflags, *ldflags])
        except Exception:
            return False
    return True


def openmp_flags():
    """(compile flags, link flags) for OpenMP, or none (serial kernels)."""
    if os.environ.get("FASTCONV_NO_OPENMP") == "1":
        return [], []
    code = "#include <omp.h>\nint main(void){return omp_get_max_threads() < 1;}\n"
    # GCC and LLVM clang; Apple's clang with Homebrew's libomp (its paths
    # given in CFLAGS/LDFLAGS).
    for cflags, ldflags in ((["-fopenmp"], ["-fopenmp"]),
                            (["-Xpreprocessor", "-fopenmp"], ["-lomp"])):
        if accepts(cflags, ldflags, code):
            return cflags, ldflags
    print("fastconv: the compiler has no OpenMP; building serial kernels", file=sys.stderr)
    return [], []


def optional_flags(flags, ldflags=False):
    """The flags of ``flags`` that this compiler accepts, each probed alone."""
    return [f for f in flags if (accepts([], [f]) if ldflags else accepts([f]))]


OPENMP_C, OPENMP_LD = openmp_flags()
# Portable code: no -march=native in a wheel; no -ffast-math (it breaks the
# NaN rules of max pooling).  -g0 overrides Python's own -g.
OPT = ["-O0", "-g", "-fno-omit-frame-pointer", *SANITIZE] if DEBUG else ["-O3", "-g0"]
# GCC only: short row copies stay inline loops rather than calls to memcpy/memset.
C_OPT = OPT + ([] if DEBUG else optional_flags(["-fno-tree-loop-distribute-patterns"]))
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Wshadow", "-Wconversion"]
STRICT += ["-Werror"] if WERROR else []
# Release: no debug sections from any object (-S: GNU ld, lld and Apple's ld).
LINK = SANITIZE if DEBUG else optional_flags(["-Wl,-S"], ldflags=True)


class BuildExt(build_ext):
    """build_ext without the interpreter's own run-time library path.

    Some Pythons (pyenv's, for one) put ``-Wl,-rpath,<their lib>`` into the
    link command for extensions; an extension needs no libpython on Linux or
    macOS, and a wheel must not carry the build machine's paths.
    """

    def build_extensions(self):
        linker = self.compiler.linker_so
        keep, skip = [], False
        for arg in linker:
            if skip:                      # the path after a bare "-rpath"
                skip = False
                continue
            if arg.startswith(("-Wl,-rpath", "-Wl,-R", "-Wl,--enable-new-dtags")):
                continue
            if arg in ("-rpath", "-R"):
                skip = True
                continue
            keep.append(arg)
        self.compiler.set_executable("linker_so", keep)
        super().build_extensions()


# build_clib reads a library's header dependencies from "obj_deps" (the ""
# key: every source), not "depends": without it an edited header or template
# leaves the objects stale.  When any object is stale, build_clib compiles
# every source, so one global list is as precise as per-source ones.
fastconv_c = (
    "fastconv_c",
    {"sources": C_SOURCES, "include_dirs": ["src_c"],
     "cflags": C_OPT + STRICT + OPENMP_C, "obj_deps": {"": C_DEPENDS},
     "macros": [("FC_NO_CLONES", None)] if NO_CLONES else []},
)

extensions = [
    Extension(
        "fastconv._ext",
        sources=["fastconv/_ext.pyx"],
        include_dirs=[np.get_include(), "src_c"],
        depends=C_DEPENDS + C_SOURCES,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=OPT + OPENMP_C,
        extra_link_args=OPENMP_LD + LINK,
        # the C kernels call sqrt (batch norm); MSVC has no separate libm
        libraries=[] if sys.platform == "win32" else ["m"],
    )
]

setup(
    libraries=[fastconv_c],
    cmdclass={"build_ext": BuildExt},
    ext_modules=cythonize(
        extensions,
        compiler_directives={
            "language_level": 3,
            "boundscheck": DEBUG,
            "wraparound": False,
            "initializedcheck": DEBUG,
            "nonecheck": False,
            "cdivision": True,
            "embedsignature": True,
        },
    ),
)
