FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /srv/tessera
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN useradd --system --uid 10001 tessera && mkdir -p /keys && chown tessera /keys
USER tessera
ENV TESSERA_ENV=production KEYS_DIR=/keys HOST=0.0.0.0 PORT=8000
EXPOSE 8000
# Migrate, make sure a signing key exists, then serve.
CMD ["sh", "-c", "flask db upgrade && flask keys generate --if-missing && exec gunicorn -c gunicorn.conf.py wsgi:app"]
