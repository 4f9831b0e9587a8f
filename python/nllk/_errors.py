"""The exceptions nllk raises: one hierarchy for the numpy front end (nllk.*), nllk.torch and the accumulators.

Every error nllk raises itself is an NllkError, and also the built-in exception PyTorch raises for the same
mistake, so code written against PyTorch (`except IndexError`, `except ValueError`) keeps working:

    NllkError                                     .status, .status_name, .index (None when not from the library)
    +-- NllkValueError(NllkError, ValueError)      bad option value (reduction, a negative count), bad state bytes
    +-- NllkTypeError(NllkError, TypeError)        an argument of the wrong Python type (ignore_index=1.5, eps='a')
    |   +-- DTypeError(NllkTypeError, RuntimeError) a dtype nllk does not compute (PyTorch: RuntimeError)
    +-- NllkIndexError(NllkError, IndexError)      an NLL / cross-entropy target outside [0, C) that is not
    |                                              ignore_index; a 0-d cross_entropy input (no class dimension)
    +-- NllkOverflowError(NllkError, OverflowError) a count too large for the C type, a size product overflow
    +-- NllkRuntimeError(NllkError, RuntimeError)  shapes PyTorch rejects, ignore_index outside int64, other failures

Failures reported by libnllk carry its status code and message (nllk_last_error()), and for an out-of-range
target the global flat index of the lowest offending element (nllk_last_error_index()); errors found by the
Python argument checks have status None.
"""
from typing import Optional


class NllkError(Exception):
    """An error raised by nllk. `status` is the nllk_status code (None for the Python-side argument checks),
    `status_name` its name, `index` the flat element index the error is about (None when it names none)."""

    def __init__(self, message: str, status: Optional[int] = None, status_name: Optional[str] = None,
                 index: Optional[int] = None):
        super().__init__(message)
        self.status = status
        self.status_name = status_name
        self.index = index


class NllkValueError(NllkError, ValueError):
    """An option value outside its range (NLLK_ERR_INVALID_ARGUMENT from the library)."""


class NllkTypeError(NllkError, TypeError):
    """An argument of a Python type the function does not take, as PyTorch's argument parser rejects it."""


class DTypeError(NllkTypeError, RuntimeError):
    """An array dtype nllk does not compute with. A TypeError, and a RuntimeError because that is what PyTorch
    raises for the same inputs ("expected scalar type ...", "not implemented for 'Half'")."""


class NllkIndexError(NllkError, IndexError):
    """NLLK_ERR_TARGET_OUT_OF_RANGE: an NLL or cross-entropy target outside [0, C) that is not ignore_index (and,
    as PyTorch, a 0-d cross_entropy input: its class dimension 1 does not exist)."""


class NllkOverflowError(NllkError, OverflowError):
    """NLLK_ERR_SIZE_OVERFLOW (a size product does not fit in size_t), or a count too large for its C type."""


class NllkRuntimeError(NllkError, RuntimeError):
    """What PyTorch reports as a RuntimeError (shape mismatches, ignore_index outside int64), and library
    failures other than the above (NLLK_ERR_NULL_POINTER, NLLK_ERR_UNSUPPORTED, an unknown status)."""
