"""Serve an :class:`Instance` over HTTP(S) from a background thread.

Usage::

    with EmulatorServer(accounts=20, seed=7) as emu:
        requests.get(emu.url + "/api/now/table/customer_account",
                     auth=(emu.admin_user, emu.admin_password))
"""

from __future__ import annotations

import logging
import shutil
import ssl
import tempfile
import threading
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from connector.emulator import tls
from connector.emulator.app import EmulatorApp
from connector.emulator.faults import FaultSettings
from connector.emulator.instance import Instance, ProgressFn

LOG = logging.getLogger(__name__)


class _QuietHandler(WSGIRequestHandler):
    """Request lines go to DEBUG, not stderr (tests make thousands)."""

    def send_response(self, code: int, message: str | None = None) -> None:
        # The app sends its own Date (clock-skew fault) and Server headers.
        self.log_request(code)
        self.send_response_only(code, message)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # A request that never parsed (e.g. a TLS handshake sent to plain HTTP)
        # has no command or path yet; werkzeug still logs its 400.
        command = getattr(self, "command", None) or "-"
        path = getattr(self, "path", None) or "-"
        LOG.debug("%s %s %s", command, path, code)

    def log(self, type: str, message: str, *args: Any) -> None:
        LOG.debug(message, *args)


class EmulatorServer:
    """An emulated instance listening on ``host:port`` (port 0 = any free port)."""

    def __init__(
        self,
        *,
        accounts: int = 20,
        seed: int = 7,
        as_of: date | None = None,
        tls: bool = False,
        db_path: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        tls_dir: str | None = None,
        faults: FaultSettings | None = None,
        clock: Callable[[], datetime] | None = None,
        progress: ProgressFn | None = None,
        **accounts_kw: Any,
    ) -> None:
        self.instance = Instance(
            accounts=accounts,
            seed=seed,
            as_of=as_of,
            db_path=db_path,
            faults=faults,
            clock=clock,
            progress=progress,
            **accounts_kw,
        )
        self.host = host
        self.ca_file: str | None = None
        self._tls_tmp: str | None = None
        context = self._tls_context(tls_dir) if tls else None
        self._server: BaseWSGIServer = make_server(
            host,
            port,
            EmulatorApp(self.instance),
            threaded=True,
            ssl_context=context,
            request_handler=_QuietHandler,
        )
        self.port = self._server.server_port
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://{host}:{self.port}"
        self._thread: threading.Thread | None = None

    def _tls_context(self, tls_dir: str | None) -> ssl.SSLContext:
        if tls_dir is None:
            self._tls_tmp = tempfile.mkdtemp(prefix="csm-emulator-tls-")
            tls_dir = self._tls_tmp
        ca, cert, key = tls.generate(Path(tls_dir), self.host)
        self.ca_file = str(ca)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        return context

    # --- credentials, for tests and the CLI banner ---------------------------------

    @property
    def faults(self) -> FaultSettings:
        return self.instance.faults

    @property
    def admin_user(self) -> str:
        return self.instance.admin_user

    @property
    def admin_password(self) -> str:
        return self.instance.admin_password

    @property
    def integration_user(self) -> str:
        return self.instance.integration_user

    @property
    def integration_password(self) -> str:
        return self.instance.integration_password

    @property
    def acl_user(self) -> str:
        return self.instance.acl_user

    @property
    def acl_password(self) -> str:
        return self.instance.acl_password

    @property
    def restricted_user(self) -> str:
        return self.instance.restricted_user

    @property
    def restricted_password(self) -> str:
        return self.instance.restricted_password

    @property
    def client_id(self) -> str:
        return self.instance.client_id

    @property
    def client_secret(self) -> str:
        return self.instance.client_secret

    # --- lifecycle -----------------------------------------------------------------

    def start(self) -> EmulatorServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # quick shutdown between tests
            name="emulator-http",
            daemon=True,
        )
        self._thread.start()
        LOG.info("Emulator listening on %s", self.url)
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread (the CLI) until interrupted."""
        self._server.serve_forever()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._server.server_close()
        self.instance.close()
        if self._tls_tmp:
            shutil.rmtree(self._tls_tmp, ignore_errors=True)
            self._tls_tmp = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
