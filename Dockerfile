# One image for every process of Arbitrage Sniper: web (the default command), ingestor, engine,
# Celery worker with beat, and the demo exchange simulator. docker-compose.yml runs them all.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=arbsite.settings

WORKDIR /app

# The pinned runtime requirements first, so that a code change reuses this layer. Every one of them
# ships a manylinux wheel for CPython 3.11: no compiler is needed, and --only-binary keeps it so.
COPY requirements.txt ./
RUN pip install --only-binary=:all: -r requirements.txt

COPY . .

# Static files are collected into STATIC_ROOT (var/static) at build time. The code stays owned by
# root, so the processes cannot rewrite it; only var/ (the beat schedule) is the app user's.
RUN python manage.py collectstatic --noinput -v 0 \
    && useradd --system --user-group --home-dir /app --no-create-home --shell /usr/sbin/nologin app \
    && chown -R app:app /app/var

USER app

EXPOSE 3000

# Inside a container the web process listens on every interface unless WEB_HOST says otherwise: the
# container's network, not loopback, is the boundary there (docker-compose.yml publishes only this).
CMD ["sh", "-c", "exec daphne -b \"${WEB_HOST:-0.0.0.0}\" -p \"${PORT:-3000}\" arbsite.asgi:application"]
