"""Errors about users' task definitions and data; each message names the file, key or row and the fix."""


class TaskDefinitionError(ValueError):
    """A task name or definition file is wrong; the message says how to fix it."""


class DataFileError(ValueError):
    """A data file cannot be read as declared; the message names the file and the fix."""


class TaskDataError(ValueError):
    """A task's examples cannot be used as declared; the message says what to change."""
