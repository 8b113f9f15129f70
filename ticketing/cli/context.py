"""What every ``ticketd`` command may need — the configuration and the database engine,
loaded on first use — and the decorator that passes it.  Apart from ``app`` (which
registers the commands) so that a command's module never imports the command line."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import click
from sqlalchemy.engine import Engine

from ticketing.config import LoadedConfig, load_config
from ticketing.logs import set_log_format
from ticketing.store.db import create_db_engine

__all__ = ["Context", "pass_context"]


@dataclass
class Context:
    """What every command may need, loaded on first use and passed explicitly."""

    config_path: Path | None
    _loaded: LoadedConfig | None = None
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def loaded(self) -> LoadedConfig:
        if self._loaded is None:
            self._loaded = load_config(self.config_path)
            logging.getLogger().setLevel(self._loaded.config.logging.level)
            set_log_format(self._loaded.config.logging.format)
        return self._loaded

    @property
    def source(self) -> str:
        path = self.loaded.path
        return str(path) if path else "(embedded defaults)"

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = create_db_engine(self.loaded.config.database)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


pass_context = click.make_pass_decorator(Context)
