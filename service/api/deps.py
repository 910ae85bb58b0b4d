"""Typed dependencies of the routes: `EngineDep` is the service's application object."""

from typing import Annotated

from fastapi import Depends, Request

from service.config import Settings
from service.engine import Engine


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
