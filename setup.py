"""The optional compiled library: the random-slope fits' node pass, modes
and scores (skre/_core/_slopepass.c, _slopemodes.c, _slopescores.c) and the
random intercept's modes and rule without covariates (_interpass.c, a library
of its own); everything else is in pyproject.toml.

It is built on Linux x86-64 (glibc's vector exp and log, libmvec), and only
there: elsewhere, or when the build fails (no C compiler), skre installs
without it and every fit computes the same in numpy, with the same results
(skre/_core/kernel.py)."""

import platform
import sys

from setuptools import Extension, setup

extensions = []
if sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64"):
    extensions.append(
        Extension(
            "skre._core._slopepass",
            [f"skre/_core/_slope{part}.c" for part in ("pass", "modes", "scores")],
            depends=["skre/_core/_vecmath.h"],
            extra_compile_args=["-O3", "-fopenmp-simd", "-std=c99"],
            libraries=["mvec", "m"],
            optional=True,
        )
    )
    # its own library: without errno (never read) GCC vectorises its exp and
    # log, where the slopes' code keeps the flags it was measured with
    extensions.append(
        Extension(
            "skre._core._interpass",
            ["skre/_core/_interpass.c"],
            depends=["skre/_core/_vecmath.h"],
            extra_compile_args=["-O3", "-fopenmp-simd", "-fno-math-errno", "-std=c99"],
            libraries=["mvec", "m"],
            optional=True,
        )
    )

setup(ext_modules=extensions)
