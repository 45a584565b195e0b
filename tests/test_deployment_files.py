"""The deployment files (Dockerfile, docker-compose.yml) and the database settings behind them.

No Docker engine runs here, so nothing is built or started: `docker-compose config` validates the
compose file against the Compose schema, and the tests below check what the schema cannot (which
ports are published, what listens where, which URL each healthcheck asks). The database tests
check DATABASE_URL parsing and that TEST_DATABASE_URL really moves the suite to PostgreSQL.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from django.core.exceptions import ImproperlyConfigured
from django.core.management import get_commands

from arbsite.settings import BASE_DIR, _database

REPO = Path(__file__).resolve().parent.parent
CHECK_COMPOSE = REPO / "scripts" / "check_compose.sh"
HEALTHCHECK = REPO / "scripts" / "healthcheck.py"
APP_SERVICES = {"migrate", "sim", "ingestor", "engine", "worker", "web"}


def compose() -> dict[str, Any]:
    parsed: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return parsed


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def defaults(value: str) -> str:
    """`value` with every `${VAR:-default}` replaced by its default, as on a host that sets none."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def env(service: str) -> dict[str, str | None]:
    """A service's environment, variables at their defaults; None for a key passed through."""
    environment = services()[service].get("environment", {})
    return {key: None if value is None else defaults(str(value)) for key, value in environment.items()}


def healthcheck_url(service: str) -> str:
    test: list[str] = services()[service]["healthcheck"]["test"]
    return next(part for part in test if part.startswith("http://"))


# --- docker-compose.yml ------------------------------------------------------------------------


@pytest.mark.skipif(
    not shutil.which("docker-compose") and not shutil.which("apt-get"),
    reason="no docker-compose, and no apt-get to install Debian's",
)
def test_docker_compose_accepts_the_compose_file() -> None:
    done = subprocess.run([str(CHECK_COMPOSE)], capture_output=True, text=True, timeout=600)
    if done.returncode == 2:  # the script could not install docker-compose (not root, no sudo)
        pytest.skip(done.stderr.strip())
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(not shutil.which("docker-compose"), reason="docker-compose is not installed")
def test_the_compose_check_rejects_an_invalid_file(tmp_path: Path) -> None:
    bad = tmp_path / "docker-compose.yml"
    bad.write_text("services:\n  web:\n    image: arbitrage-sniper\n    ports: 3000\n")
    done = subprocess.run([str(CHECK_COMPOSE), str(bad)], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "ports" in done.stderr


def test_the_system_runs_in_the_compose_file() -> None:
    assert set(services()) == {"redis", "postgres", *APP_SERVICES}
    for name in APP_SERVICES:
        assert services()[name]["build"] == ".", f"{name} runs the project's own image"
        assert services()[name]["image"] == services()["web"]["image"], "one image for every process"


def test_only_the_web_process_publishes_a_port() -> None:
    published = {name for name, service in services().items() if service.get("ports")}
    assert published == {"web"}
    (port,) = services()["web"]["ports"]
    # Published on the host's loopback unless configured: the dashboard and admin are not for everyone.
    assert defaults(port) == f"127.0.0.1:3000:{env('web')['PORT']}"
    assert env("web")["PORT"] == "3000"


def test_every_long_running_service_has_a_healthcheck() -> None:
    for name, service in services().items():
        if service.get("restart") == "no":
            continue  # a one-shot job (migrate): waited for with service_completed_successfully
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_one_shot_jobs_are_awaited_to_completion_and_the_rest_until_healthy() -> None:
    for name, service in services().items():
        for target, rule in service.get("depends_on", {}).items():
            condition = rule["condition"]
            if services()[target].get("restart") == "no":
                assert condition == "service_completed_successfully", f"{name} -> {target}"
            elif condition == "service_healthy":
                assert "healthcheck" in services()[target], f"{name} waits for {target}, which has no healthcheck"
            else:
                assert condition == "service_started", f"{name} -> {target}: {condition}"


def test_web_and_worker_start_after_the_schema_and_their_stores() -> None:
    for name in ("web", "worker"):
        depends = services()[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["redis"]["condition"] == "service_healthy"
        assert depends["postgres"]["condition"] == "service_healthy"
    assert services()["engine"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services()["ingestor"]["depends_on"]["sim"]["condition"] == "service_healthy"


def test_redis_and_postgres_healthchecks() -> None:
    assert services()["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert "--appendonly" in services()["redis"]["command"]
    assert services()["postgres"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]


def test_each_healthcheck_asks_the_port_its_process_listens_on() -> None:
    expected = {
        "ingestor": f"http://127.0.0.1:{env('ingestor')['HEALTH_PORT']}/health",
        "engine": f"http://127.0.0.1:{env('engine')['ENGINE_HEALTH_PORT']}/health",
        "web": f"http://127.0.0.1:{env('web')['PORT']}/api/health",
        "sim": f"http://127.0.0.1:{env('sim')['SIM_BINANCE_PORT']}/sim/status",
    }
    for name, url in expected.items():
        assert healthcheck_url(name) == url
        assert services()[name]["healthcheck"]["test"][:3] == ["CMD", "python", "scripts/healthcheck.py"]


def test_processes_listen_beyond_loopback_inside_their_containers() -> None:
    for name in APP_SERVICES:
        assert env(name)["HEALTH_HOST"] == "0.0.0.0", name
    assert env("web")["WEB_HOST"] == "0.0.0.0"
    assert env("sim")["SIM_HOST"] == "0.0.0.0"
    assert env("ingestor")["SIM_HOST"] == "sim", "the ingestor dials the simulator by service name"


def test_the_ingestor_binds_zeromq_and_the_engine_dials_it_by_name() -> None:
    bind = urlparse(env("ingestor")["ZMQ_ENDPOINT"])
    connect = urlparse(env("engine")["ZMQ_ENDPOINT"])
    assert (bind.scheme, bind.hostname) == ("tcp", "0.0.0.0")
    assert (connect.scheme, connect.hostname) == ("tcp", "ingestor")
    assert bind.port == connect.port


def test_the_web_process_reads_the_ingestors_health_by_service_name() -> None:
    assert env("web")["INGESTOR_HEALTH_URL"] == f"http://ingestor:{env('ingestor')['HEALTH_PORT']}/health"


def test_redis_postgres_and_zeromq_stay_on_the_internal_network() -> None:
    networks = compose()["networks"]
    internal = {name for name, network in networks.items() if (network or {}).get("internal")}
    assert internal == {"backend"}
    for name, service in services().items():
        joined = set(service["networks"])
        assert "backend" in joined, name
        outside = joined - internal
        # The web process for its published port, the ingestor to reach the real exchanges.
        assert not outside or name in {"web", "ingestor"}, f"{name} is on {outside}"


def test_every_process_shares_one_redis_and_one_postgres() -> None:
    database = env("web")["DATABASE_URL"]
    assert database
    settings = _database(database)
    postgres = env("postgres")
    assert settings["ENGINE"] == "django.db.backends.postgresql"
    assert settings["HOST"] == "postgres"
    assert (settings["NAME"], settings["USER"], settings["PASSWORD"]) == (
        postgres["POSTGRES_DB"],
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
    )
    for name in APP_SERVICES:
        assert env(name)["DATABASE_URL"] == database, name
        assert env(name)["REDIS_URL"] == "redis://redis:6379/0", name


def test_app_services_run_commands_the_project_has() -> None:
    commands = get_commands()
    for name in APP_SERVICES - {"web", "worker"}:
        command = " ".join(services()[name]["command"])
        for used in re.findall(r"manage\.py (\w+)", command):
            assert used in commands, f"{name}: manage.py {used} does not exist"
    worker = services()["worker"]["command"]
    assert worker[:4] == ["celery", "-A", "arbsite", "worker"]
    assert "--beat" in worker


# --- Dockerfile and .dockerignore -------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (REPO / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_the_image_is_python_311_slim_with_the_pinned_requirements() -> None:
    steps = dockerfile()
    assert steps[0] == ("FROM", "python:3.11-slim")
    runs = " ".join(args for instruction, args in steps if instruction == "RUN")
    assert "pip install --only-binary=:all: -r requirements.txt" in runs
    assert "manage.py collectstatic --noinput" in runs


def test_the_image_runs_as_a_user_who_is_not_root() -> None:
    steps = dockerfile()
    users = [args for instruction, args in steps if instruction == "USER"]
    assert users
    assert users[-1] not in {"root", "0"}
    last_user = max(i for i, (instruction, _args) in enumerate(steps) if instruction == "USER")
    assert last_user < next(i for i, (instruction, _args) in enumerate(steps) if instruction == "CMD")


def test_the_image_serves_the_web_process_by_default() -> None:
    (cmd,) = [json.loads(args) for instruction, args in dockerfile() if instruction == "CMD"]
    assert "daphne" in " ".join(cmd)
    assert "arbsite.asgi:application" in " ".join(cmd)
    assert "command" not in services()["web"], "the web service runs the image's default command"


def test_secrets_and_local_state_stay_out_of_the_image() -> None:
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".env", ".venv", ".git", "*.sqlite3", "var"} <= ignored


# --- scripts/healthcheck.py -------------------------------------------------------------------


@pytest.fixture
def http_status() -> Iterator[tuple[str, list[int]]]:
    """A server answering every GET with the status at the end of the list (200 at first)."""
    statuses = [200]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(statuses[-1])
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/health", statuses
    server.shutdown()
    server.server_close()


def run_healthcheck(*args: str) -> int:
    return subprocess.run([sys.executable, str(HEALTHCHECK), *args], capture_output=True, timeout=30).returncode


def test_healthcheck_passes_on_200_and_fails_on_503(http_status: tuple[str, list[int]]) -> None:
    url, statuses = http_status
    assert run_healthcheck(url) == 0
    statuses.append(503)
    assert run_healthcheck(url) == 1
    assert run_healthcheck(url, "--accept", "503") == 0
    statuses.append(500)
    assert run_healthcheck(url, "--accept", "503") == 1


def test_healthcheck_fails_when_nothing_listens() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert run_healthcheck(f"http://127.0.0.1:{port}/health", "--timeout", "1") == 1


# --- DATABASE_URL and TEST_DATABASE_URL -------------------------------------------------------


def test_sqlite_paths_are_relative_to_the_repository() -> None:
    assert _database("sqlite:///db.sqlite3")["NAME"] == str(BASE_DIR / "db.sqlite3")
    assert _database("sqlite:///var/arb.sqlite3")["NAME"] == str(BASE_DIR / "var" / "arb.sqlite3")
    assert _database("sqlite:////tmp/arb.sqlite3")["NAME"] == "/tmp/arb.sqlite3"
    assert _database("sqlite://")["NAME"] == str(BASE_DIR / "db.sqlite3")
    assert _database("sqlite:///:memory:")["NAME"] == ":memory:"


def test_postgres_url_gives_every_connection_field() -> None:
    assert _database("postgres://arb:p%40ss%3Aword@db.internal:6543/signals?sslmode=require&connect_timeout=5") == {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "signals",
        "USER": "arb",
        "PASSWORD": "p@ss:word",
        "HOST": "db.internal",
        "PORT": "6543",
        "OPTIONS": {"sslmode": "require", "connect_timeout": "5"},
    }


def test_postgres_url_without_password_port_or_host() -> None:
    assert _database("postgresql://postgres@127.0.0.1/arbitrage") == {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "arbitrage",
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": "127.0.0.1",
        "PORT": "",
        "OPTIONS": {},
    }
    # A Unix socket directory, percent-encoded as the host.
    assert _database("postgres://%2Fvar%2Frun%2Fpostgresql/arbitrage")["HOST"] == "/var/run/postgresql"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://root:hunter2@localhost/arb", "use sqlite:///PATH or postgres://"),
        ("postgres://arb:hunter2@localhost:5432/", "names no database"),
        ("postgres://arb:hunter2@localhost:port/arb", "is not a number"),
    ],
)
def test_a_bad_database_url_fails_loudly_without_its_password(url: str, message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=re.escape(message)) as raised:
        _database(url)
    assert "hunter2" not in str(raised.value)


def settings_database(**environ: str) -> dict[str, Any]:
    """DATABASES["default"] as a fresh process computes it from `environ`."""
    code = "from django.conf import settings; import json; print(json.dumps(settings.DATABASES['default']))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "arbsite.settings", **environ},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    database: dict[str, Any] = json.loads(done.stdout)
    return database


def test_test_database_url_wins_over_database_url() -> None:
    database = settings_database(
        DATABASE_URL="sqlite:///var/other.sqlite3", TEST_DATABASE_URL="postgres://postgres@127.0.0.1:5432/arb_test"
    )
    assert (database["ENGINE"], database["NAME"]) == ("django.db.backends.postgresql", "arb_test")


def test_without_test_database_url_database_url_applies() -> None:
    database = settings_database(DATABASE_URL="sqlite:///var/other.sqlite3", TEST_DATABASE_URL="")
    assert (database["ENGINE"], database["NAME"]) == ("django.db.backends.sqlite3", str(BASE_DIR / "var/other.sqlite3"))


@pytest.mark.django_db
def test_the_suite_runs_on_the_database_test_database_url_names() -> None:
    """Under TEST_DATABASE_URL=postgres://... every database test of this run is on PostgreSQL."""
    from django.contrib.auth.models import User
    from django.db import connection

    url = os.environ.get("TEST_DATABASE_URL", "")
    if url:
        assert connection.vendor == "postgresql"
        assert connection.settings_dict["NAME"] == f"test_{_database(url)['NAME']}"
    else:
        scheme = urlparse(os.environ.get("DATABASE_URL") or "sqlite://").scheme
        assert connection.vendor == ("sqlite" if scheme == "sqlite" else "postgresql")
    User.objects.create_user("deploy-check", password="unused")
    assert User.objects.filter(username="deploy-check").count() == 1
