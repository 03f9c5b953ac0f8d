"""Every daemon's life: --check-config on good and broken files, SIGHUP reload (a broken file
is refused and the daemon keeps running), SIGTERM stops it cleanly."""
import signal
import subprocess
import time

import pytest

from conftest import BIN, run, write_config
from resolverlib import free_port

DAEMONS = ["aegis-resolver", "aegis-tenantd", "aegis-portal-api", "aegis-logpipe"]
REQUIRED = {
    "aegis-tenantd": 'database: { dsn = "host=127.0.0.1"; };\n',
    "aegis-portal-api": f"""database: {{ dsn = "host=127.0.0.1"; }};
http: {{ listen = "127.0.0.1:{free_port()}"; }};
""",
    "aegis-resolver": f"""node: {{ name = "n1"; }};
server: {{ listen = ["127.0.0.1:{free_port()}"]; workers = 1; }};
upstream: {{ servers = ["127.0.0.1:53"]; }};
policy: {{ snapshot = "/nonexistent/policy.snap"; }};
""",
}


def good_config(daemon):
    return 'log: { level = "debug"; target = "stderr"; };\n' + REQUIRED.get(daemon, "")


@pytest.mark.parametrize("daemon", DAEMONS)
def test_check_config_accepts_a_good_file(tmp_path, daemon):
    conf = write_config(tmp_path / "d.conf", good_config(daemon))
    r = run([BIN / daemon, "-c", conf, "--check-config"])
    assert r.returncode == 0, r.stderr
    assert "is valid" in r.stdout


BROKEN = [
    ('log: { level = "loud"; };\n', "log.level: 'loud' is not one of"),
    ('log: { levle = "info"; };\n', "unknown setting 'log.levle'"),
    ('log: { level = "info" ;\n', "syntax error"),
    ('log = 3;\n', "unknown setting 'log'"),
]


@pytest.mark.parametrize("daemon", DAEMONS)
@pytest.mark.parametrize("text,message", BROKEN)
def test_check_config_refuses_a_broken_file(tmp_path, daemon, text, message):
    conf = write_config(tmp_path / "d.conf", text + REQUIRED.get(daemon, ""))
    r = run([BIN / daemon, "-c", conf, "--check-config"])
    assert r.returncode == 1
    assert message in r.stderr
    assert str(conf) in r.stderr


@pytest.mark.parametrize("daemon", DAEMONS)
def test_missing_config_file_is_refused(tmp_path, daemon):
    r = run([BIN / daemon, "-c", tmp_path / "absent.conf", "--check-config"])
    assert r.returncode == 1
    assert "cannot read" in r.stderr


def wait_for(proc, text, timeout=10):
    """Reads stderr lines until one contains text; returns the lines read."""
    lines = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return lines
    pytest.fail(f"'{text}' not logged; got {lines}")


@pytest.mark.parametrize("daemon", DAEMONS)
def test_reload_and_graceful_stop(tmp_path, daemon):
    conf = write_config(tmp_path / "d.conf", good_config(daemon))
    proc = subprocess.Popen([str(BIN / daemon), "-c", str(conf)], stderr=subprocess.PIPE,
                            text=True)
    try:
        wait_for(proc, "event=running")
        conf.write_text('log: { level = "nonsense"; };\n' + REQUIRED.get(daemon, ""))
        proc.send_signal(signal.SIGHUP)
        wait_for(proc, "event=reload_refused")
        assert proc.poll() is None, "a broken reload must not stop the daemon"
        conf.write_text(good_config(daemon))
        proc.send_signal(signal.SIGHUP)
        wait_for(proc, "event=reloaded")
        proc.send_signal(signal.SIGTERM)
        wait_for(proc, "event=stopped")
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
