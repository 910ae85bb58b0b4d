"""A command's failure, told in one line: `whitened-search` reports it without a traceback."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from service.config import ServerSettings


class CliError(Exception):
    """A failure to report in one line, without a traceback."""


def server_settings(**overrides: Any) -> "ServerSettings":
    """The server's settings from the environment and `overrides`: every command reads them
    (`query` for the address and key), so a bad variable is one line naming it, not pydantic's
    traceback."""
    from pydantic import ValidationError

    from service.config import ServerSettings

    try:
        return ServerSettings(**overrides)
    except ValidationError as exc:  # one line per problem, without pydantic's decoration
        problems = "; ".join(
            ".".join(str(part).upper() for part in error["loc"])
            + ": " * bool(error["loc"])
            + str(error["msg"]).removeprefix("Value error, ")
            for error in exc.errors()
        )
        raise CliError(f"invalid settings: {problems}") from exc
