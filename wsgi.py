"""WSGI entry point: ``gunicorn -c gunicorn.conf.py wsgi:app``; also found by ``flask``."""

from app import create_app
from config import ConfigError

try:
    app = create_app()
except ConfigError as exc:  # unsafe production settings: one line saying what to set
    raise SystemExit(f"Error: {exc}") from None
