"""The C extension (declared here: setuptools' pyproject.toml form for it is still experimental)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("kcolors._kernels", ["src/kcolors/_kernels.c"], extra_compile_args=["-O3"])])
