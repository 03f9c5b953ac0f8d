"""The whole platform for the end-to-end tests: scripts/platform.sh starts aegis-tenantd,
aegis-logpipe, aegis-portal-api and two aegis-resolver nodes on the dev stack that
scripts/test.sh brought up, with a database and a query-log topic of their own."""
import os
import secrets
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent))

from e2elib import Api, Platform  # noqa: E402


def stack_dir():
    value = os.environ.get("AEGIS_STACK_DIR")
    if not value or not (Path(value) / "env").exists():
        pytest.fail("AEGIS_STACK_DIR is not a running dev stack: run the tests through "
                    "scripts/test.sh")
    return value


@pytest.fixture(scope="session")
def platform(tmp_path_factory):
    tag = secrets.token_hex(4)
    env = dict(os.environ,
               AEGIS_STACK_DIR=stack_dir(),
               AEGIS_PLATFORM_DIR=str(tmp_path_factory.mktemp("platform")),
               AEGIS_PLATFORM_DB=f"aegis_e2e_{tag}",
               AEGIS_PLATFORM_TOPIC=f"aegis.querylog.e2e.{tag}",
               AEGIS_PLATFORM_PORT=os.environ.get("AEGIS_E2E_PORT", "26800"),
               AEGIS_PLATFORM_CACHE_TTL="3")
    script = ROOT / "scripts" / "platform.sh"
    up = subprocess.run(["bash", str(script), "up"], env=env, capture_output=True, text=True,
                        timeout=180)
    p = Platform(script, env)
    try:
        assert up.returncode == 0, up.stderr + p.logs()
        yield p
    finally:
        subprocess.run(["bash", str(script), "down"], env=env, capture_output=True, timeout=120)
        admin = psycopg2.connect(p.stack_env["AEGIS_PG_ADMIN_DSN"])
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{env["AEGIS_PLATFORM_DB"]}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="session")
def ministry_admin(platform):
    return Api(platform.env["AEGIS_API_URL"], platform.admin_key())
