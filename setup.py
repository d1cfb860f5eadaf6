"""The C extension (declared here: setuptools' pyproject.toml form for it is still experimental).

Its flags depend on the compiler. gcc and clang (and MinGW) take -O3, and -ffp-contract=off: no platform may
fuse a multiply and an add into one rounding (arm64 would by default), which would change the k-means sums and
so the bytes written; on x86-64, whose baseline has no FMA, it changes no instruction. MSVC takes /O2 (its
contraction is off by default, and _kernels.c turns it off for older versions).

Built by CPython 3.11 or later, the extension uses only the limited C API of 3.11 (abi3): one wheel,
``cp311-abi3``, serves 3.11 and every later CPython. 3.11 is the first whose limited API has the buffer
protocol (``PyObject_GetBuffer``), which every kernel uses, so 3.10 gets a wheel of its own. The limited API
costs nothing here: gcc -O3 gives the same machine code both ways but for one constant (the API version that
``PyModule_Create`` passes), and a k-means fit times the same (CHANGELOG.md, 0.1.0). A free-threaded CPython
(3.13t) has no limited API, so it gets a version-specific build.
"""

import sys
import sysconfig

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

GCC_FLAGS = ["-O3", "-ffp-contract=off"]
LIMITED_API = sys.version_info >= (3, 11) and not sysconfig.get_config_var("Py_GIL_DISABLED")
LIMITED_API_VERSION = "0x030B0000"  # 3.11: Py_buffer and PyObject_GetBuffer joined the limited API
MSVC_FLAGS = ["/O2"]


class BuildExt(build_ext):
    """build_ext giving each compiler its own flags (MSVC ignores, with a warning, the ones it does not know)."""

    def build_extensions(self):
        flags = MSVC_FLAGS if self.compiler.compiler_type == "msvc" else GCC_FLAGS
        for extension in self.extensions:
            extension.extra_compile_args = [*flags, *extension.extra_compile_args]
        super().build_extensions()


kernels = Extension("kcolors._kernels", ["src/kcolors/_kernels.c"], py_limited_api=LIMITED_API,
                    define_macros=[("Py_LIMITED_API", LIMITED_API_VERSION)] if LIMITED_API else [])
setup(ext_modules=[kernels], cmdclass={"build_ext": BuildExt},
      options={"bdist_wheel": {"py_limited_api": "cp311"}} if LIMITED_API else {})
