"""The ceiling for an endpoint's own overhead: a bare Flask app under the same gunicorn.

Two routes and nothing else (no database, no session, no extensions):

    GET  /ping   -> a small JSON document
    POST /echo   -> reads the form body and answers a small JSON document

``bench/run.sh`` serves it with Tessera's ``gunicorn.conf.py`` (so the same workers,
worker class and keep-alive) and measures it with the same wrk settings:

    gunicorn -c gunicorn.conf.py --pythonpath bench bare_app:app
"""

from __future__ import annotations

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get("/ping")
def ping():
    return jsonify(status="ok", service="bare")


@app.post("/echo")
def echo():
    form = request.form
    return jsonify(active=True, fields=len(form), token_length=len(form.get("token", "")))
