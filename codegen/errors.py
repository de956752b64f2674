"""The one exception type the CLI turns into a clean message and a non-zero exit."""


class UserError(ValueError):
    """A problem with the user's input: the message names the problem and the fix."""
