"""The C extension (declared here: setuptools' pyproject.toml form for it is still experimental).

Its flags depend on the compiler. gcc and clang (and MinGW) take -O3, and -ffp-contract=off: no platform may
fuse a multiply and an add into one rounding (arm64 would by default), which would change the k-means sums and
so the bytes written; on x86-64, whose baseline has no FMA, it changes no instruction. MSVC takes /O2 (its
contraction is off by default, and _kernels.c turns it off for older versions).
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

GCC_FLAGS = ["-O3", "-ffp-contract=off"]
MSVC_FLAGS = ["/O2"]


class BuildExt(build_ext):
    """build_ext giving each compiler its own flags (MSVC ignores, with a warning, the ones it does not know)."""

    def build_extensions(self):
        flags = MSVC_FLAGS if self.compiler.compiler_type == "msvc" else GCC_FLAGS
        for extension in self.extensions:
            extension.extra_compile_args = [*flags, *extension.extra_compile_args]
        super().build_extensions()


setup(ext_modules=[Extension("kcolors._kernels", ["src/kcolors/_kernels.c"])], cmdclass={"build_ext": BuildExt})
