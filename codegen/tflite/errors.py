"""The error about a .tflite model that the int8 path cannot use (kept apart so that the
parser, the quantisation arithmetic and the converter can all raise it)."""

from codegen.errors import UserError


class NotInt8ModelError(UserError):
    """The .tflite model is not an int8-end-to-end chain of FULLY_CONNECTED ops."""
