"""The optional compiled library of the random-slope fits: node pass, modes
and scores (skre/_core/_slopepass.c, _slopemodes.c, _slopescores.c);
everything else is in pyproject.toml.

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
            extra_compile_args=["-O3", "-fopenmp-simd", "-std=c99"],
            libraries=["mvec", "m"],
            optional=True,
        )
    )

setup(ext_modules=extensions)
