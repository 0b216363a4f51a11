"""The operator endpoint: ``/healthz`` and ``/metrics`` on a werkzeug server thread."""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import threading
from collections.abc import Iterable

from prometheus_client import make_wsgi_app
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from connector.agent.health import HealthState
from connector.agent.metrics import AgentMetrics
from connector.errors import ConfigError, CsmSyncError, Problem

log = logging.getLogger(__name__)

_LOCAL_NAMES = {"localhost", "ip6-localhost"}


def parse_listen(
    value: str, *, allow_remote: bool, source: str = "config"
) -> tuple[str, int]:
    """Split ``host:port`` and refuse a non-loopback host unless allowed.

    Raises:
        ConfigError: The address is malformed, or not loopback and not allowed.
    """
    host, sep, port_text = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ConfigError(
            Problem(source, "daemon.http", f"expected HOST:PORT, got {value!r}")
        )
    if not is_loopback(host):
        if not allow_remote:
            raise ConfigError(
                Problem(
                    source,
                    "daemon.http",
                    f"{host!r} is not a loopback address; the endpoint has no "
                    "authentication, so set daemon.http_allow_remote: true to "
                    "expose it on purpose (behind a firewall or proxy)",
                )
            )
        log.warning(
            "Serving /healthz and /metrics on non-loopback %s:%s without "
            "authentication (daemon.http_allow_remote is true); restrict access "
            "with a firewall or a proxy",
            host,
            port_text,
        )
    return host, int(port_text)


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def is_loopback(host: str) -> bool:
    """True for localhost names and loopback addresses."""
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class OperatorApp:
    """WSGI app: ``/healthz`` from the health state, ``/metrics`` from Prometheus."""

    def __init__(self, health: HealthState, metrics: AgentMetrics) -> None:
        self.health = health
        self.metrics_app = make_wsgi_app(metrics.registry)

    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return self.metrics_app(environ, start_response)
        request = Request(environ)
        if request.path == "/healthz":
            response = self._healthz()
        else:
            response = Response("not found: try /healthz or /metrics\n", status=404)
        return response(environ, start_response)

    def _healthz(self) -> Response:
        healthy, body = self.health.evaluate()
        return Response(
            json.dumps(body, indent=2) + "\n",
            status=200 if healthy else 503,
            mimetype="application/json",
        )


class OperatorServer:
    """Serve the operator app on a background thread until :meth:`stop`."""

    def __init__(self, app: OperatorApp, host: str, port: int) -> None:
        # Bind here: werkzeug turns a busy port into sys.exit(1) with a banner.
        try:
            self._socket = socket.create_server(
                (host, port), family=_family(host), reuse_port=False
            )
        except OSError as exc:
            raise CsmSyncError(
                f"cannot serve /healthz and /metrics on {host}:{port} "
                f"({exc.strerror or exc}); set daemon.http to a free port or stop "
                "the process that uses it"
            ) from exc
        self._server: BaseWSGIServer = make_server(
            host, port, app, threaded=True, fd=self._socket.fileno()
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="csm-sync-http", daemon=True
        )

    @property
    def url(self) -> str:
        """Base URL the server listens on (with the real port when 0 was asked)."""
        host, port = self._socket.getsockname()[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}"

    def start(self) -> None:
        """Start serving in the background."""
        self._thread.start()
        log.info("Serving %s/healthz and %s/metrics", self.url, self.url)

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._socket.close()
        self._thread.join(timeout=5)
