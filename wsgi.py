"""WSGI entry point: ``gunicorn -c gunicorn.conf.py wsgi:app``; also found by ``flask``."""

from app import create_app

app = create_app()
