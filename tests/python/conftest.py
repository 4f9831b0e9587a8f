"""pytest setup for the Python front end's tests against PyTorch.

The package is imported from <repo>/python; the library is whatever nllk finds (ctest sets NLLK_LIBRARY to the
build's libnllk.so). Run: NLLK_LIBRARY=<build>/libnllk.so /usr/bin/python3 -m pytest -q tests/python
"""
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(os.path.dirname(_HERE))
sys.path.insert(0, os.path.join(_REPO, "python"))
sys.path.insert(0, _HERE)


def pytest_report_header(config):
    try:
        import nllk
        return f"nllk: {nllk.library_info()}"
    except Exception as e:  # the tests themselves will fail with the details
        return f"nllk: library not loaded ({e})"
