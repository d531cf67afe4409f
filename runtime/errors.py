"""Errors that reach a person: one clear line, never a stack trace."""


class UserError(Exception):
    """A problem the user can fix (bad input, missing tool, bad setting); the CLI prints it as one line."""
