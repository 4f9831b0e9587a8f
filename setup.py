"""Builds libnllk with CMake and ships it inside the nllk package (pyproject.toml has the metadata).

`pip install .` (offline: `pip install --no-build-isolation .`) configures a library-only CMake build in the
setuptools build folder (build-python/, not the build/ of a source checkout), builds the `nllk` target, and copies
the shared library into the package as its SONAME (libnllk.so.0.1), where the package's loader finds it without
NLLK_LIBRARY, with the _version.py CMake configured from project() in CMakeLists.txt (the one place the version is
defined). When CMake finds Torch (libtorch-dev) it also builds nllk's PyTorch operators, libnllk_torch.so, and
their Python fast path _nllk_torch*.so (with pybind11-dev and the Python headers), and puts them in the package
too (nllk.torch loads them from there; without them it uses its ctypes fallback). NLLK_CMAKE_ARGS=-DNLLK_TORCH=OFF
leaves them out. With the Python headers (python3-dev) it also builds the compiled numpy front end _nllk_fast*.so
(python/src/nllk_fast.c, no other dependency), which nllk loads from the package (without it: ctypes).
CMAKE (the cmake program), NLLK_CMAKE_ARGS (extra -D options, space-separated) and NLLK_BUILD_JOBS (default 2)
tune the build.
"""
import os
import runpy
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def project_version():
    """project(nllk VERSION x.y.z) of CMakeLists.txt, read by the package's own source-checkout fallback."""
    version = runpy.run_path(str(ROOT / "python" / "nllk" / "_version.py"))["__version__"]
    if version == "0+unknown":
        raise RuntimeError("CMakeLists.txt: no project(nllk VERSION x.y.z)")
    return version


def build_library(build_dir):
    """Configures and builds the shared library (and the PyTorch operators when Torch is found); returns the
    files to put in the package: the library's SONAME link first."""
    cmake = os.environ.get("CMAKE", "cmake")
    jobs = os.environ.get("NLLK_BUILD_JOBS", "2")
    subprocess.run([cmake, "-S", str(ROOT), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release",
                    "-DNLLK_BUILD_TESTS=OFF", "-DNLLK_BUILD_APPS=OFF", "-DNLLK_BUILD_EXAMPLES=OFF",
                    "-DNLLK_BUILD_BENCHMARKS=OFF", "-DNLLK_INSTALL=OFF", f"-DPython3_EXECUTABLE={sys.executable}",
                    f"-DNLLK_PYTHON3={sys.executable}",
                    *shlex.split(os.environ.get("NLLK_CMAKE_ARGS", ""))], check=True)
    targets = subprocess.run([cmake, "--build", str(build_dir), "--target", "help"], capture_output=True,
                             text=True).stdout
    wanted = ["nllk"] + [t for t in ("nllk_fast", "nllk_torch", "nllk_torch_python") if f" {t}" in targets]
    subprocess.run([cmake, "--build", str(build_dir), "--target", *wanted, "-j", jobs], check=True)
    # libnllk.so -> libnllk.so.0.1 (the SONAME) -> libnllk.so.0.1.0: the middle name is the one the loader needs
    sonames = [p for p in build_dir.glob("libnllk.so.*") if p.is_symlink()]
    if len(sonames) != 1:
        raise RuntimeError(f"expected one libnllk.so.* link in {build_dir}, found {sonames}")
    return (sonames + sorted(build_dir.glob("libnllk_torch.so")) + sorted(build_dir.glob("_nllk_torch*.so"))
            + sorted(build_dir.glob("_nllk_fast*.so")))


class BuildPyWithLibrary(build_py):
    def run(self):
        super().run()
        build_dir = Path(self.get_finalized_command("build").build_temp).resolve() / "cmake"
        package = Path(self.build_lib) / "nllk"
        for library in build_library(build_dir):  # the files' bytes (the SONAME, not its symlink)
            shutil.copyfile(library, package / library.name)
        shutil.copyfile(build_dir / "python" / "_version.py", package / "_version.py")  # configured by CMake


class BinaryDistribution(Distribution):
    """The package holds a compiled library: a platform wheel, installed in platlib."""

    def has_ext_modules(self):
        return True


setup(version=project_version(), cmdclass={"build_py": BuildPyWithLibrary}, distclass=BinaryDistribution,
      options={"build": {"build_base": "build-python"}, "egg_info": {"egg_base": "build-python"}})
