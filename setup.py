"""The extension list of fastconv; all metadata lives in pyproject.toml.

The plain C kernels of src_c/ are built first as a static library with strict
warnings (our own code must compile warning-free), then linked into the one
Cython extension, fastconv._ext.  FASTCONV_DEBUG=1 turns on Cython's bounds
checks and builds everything with -O0 -g and AddressSanitizer/UBSan.
"""
import os
import sys
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools._distutils.ccompiler import new_compiler
from setuptools._distutils.sysconfig import customize_compiler

DEBUG = os.environ.get("FASTCONV_DEBUG", "0") == "1"
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
    "src_c/eltwise.tmpl.h", "src_c/linear.tmpl.h",
]
# Portable code: no -march=native in a wheel; no -ffast-math (it breaks the
# NaN rules of max pooling).
OPT = ["-O0", "-g", "-fsanitize=address,undefined", "-fno-omit-frame-pointer"] if DEBUG else ["-O3"]
# Short row copies stay inline loops rather than calls to memcpy/memset.
C_OPT = OPT + ([] if DEBUG else ["-fno-tree-loop-distribute-patterns"])
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Wshadow", "-Wconversion", "-Werror"]


def openmp_flags():
    """-fopenmp if the compiler accepts it, else nothing (serial build)."""
    if os.environ.get("FASTCONV_NO_OPENMP") == "1":
        return []
    compiler = new_compiler()
    customize_compiler(compiler)
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write("#include <omp.h>\nint main(void){return omp_get_max_threads() < 1;}\n")
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=["-fopenmp"])
            compiler.link_executable(objs, "probe", output_dir=tmp, extra_postargs=["-fopenmp"])
        except Exception:
            print("fastconv: the compiler has no OpenMP; building serial kernels", file=sys.stderr)
            return []
    return ["-fopenmp"]


OPENMP = openmp_flags()
SANITIZE_LINK = ["-fsanitize=address,undefined"] if DEBUG else []

fastconv_c = (
    "fastconv_c",
    {"sources": C_SOURCES, "include_dirs": ["src_c"], "cflags": C_OPT + STRICT + OPENMP,
     "depends": C_DEPENDS},
)

extensions = [
    Extension(
        "fastconv._ext",
        sources=["fastconv/_ext.pyx"],
        include_dirs=[np.get_include(), "src_c"],
        depends=C_DEPENDS + C_SOURCES,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=OPT + OPENMP,
        extra_link_args=OPENMP + SANITIZE_LINK,
    )
]

setup(
    libraries=[fastconv_c],
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
