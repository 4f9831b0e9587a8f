"""nllk's version. The one source is project(nllk VERSION ...) in CMakeLists.txt: an installed package has this
file replaced by the one CMake configures (cmake/nllk_version.py.in, through setup.py or NLLK_INSTALL_PYTHON);
a source checkout reads CMakeLists.txt."""
import pathlib
import re


def _from_cmakelists():
    try:
        text = (pathlib.Path(__file__).resolve().parents[2] / "CMakeLists.txt").read_text()
    except OSError:
        return "0+unknown"
    match = re.search(r"project\(\s*nllk\s+VERSION\s+(\d+\.\d+\.\d+)", text)
    return match.group(1) if match else "0+unknown"


__version__ = _from_cmakelists()
