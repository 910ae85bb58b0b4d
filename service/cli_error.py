"""A command's failure, told in one line: `whitened-search` reports it without a traceback."""


class CliError(Exception):
    """A failure to report in one line, without a traceback."""
