"""Typed dependencies of the routes: `EngineDep` is the service's application object."""

from typing import Annotated

from fastapi import Depends, Request

from service.config import ServerSettings
from service.engine import Engine


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


def get_settings(request: Request) -> ServerSettings:
    return request.app.state.settings


EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = Annotated[ServerSettings, Depends(get_settings)]
