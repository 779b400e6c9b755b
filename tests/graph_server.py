"""A Microsoft Graph and Entra ID token service look-alike on 127.0.0.1 over HTTPS, so that the
real msal client inside the real fail2entra is tested against the wire, not against a mock.

It serves what msal and the poller ask for: the tenant's OpenID configuration, the token
endpoint (client credentials, with a secret or a certificate's signed assertion, checked), and
``/v1.0`` and ``/beta`` ``auditLogs/signIns`` with ``$filter`` on ``createdDateTime`` (and on
``signInEventTypes`` for the non-interactive log), newest first, paged through
``@odata.nextLink``. Tests add sign-ins, script faults, hold a request, expire or revoke tokens,
and read what was asked. The CA and the server certificate are made at test time.
"""

import base64
import datetime
import ipaddress
import json
import os
import re
import secrets
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, NamedTuple, Optional

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

TENANT = "7d1f2e3a-0b4c-4d5e-8f90-123456789abc"
CLIENT_ID = "0f2e3d4c-5b6a-4798-8a9b-cdef01234567"
SECRET = "not-a-real-secret~0123456789"
NON_INTERACTIVE_FILTER = " and signInEventTypes/any(t: t eq 'nonInteractiveUser')"
_FILTER = re.compile(r"createdDateTime ge (\S+?)((?: and signInEventTypes/any\(t: t eq 'nonInteractiveUser'\))?)")


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject: str, key, issuer: str, issuer_key, extensions=()) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1)))
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_tls_files(directory) -> "tuple[str, str, str]":
    """A CA and a server certificate for 127.0.0.1 signed by it: (CA PEM, cert PEM, key PEM) paths."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("fail2entra test CA", ca_key, "fail2entra test CA", ca_key,
                      [(x509.BasicConstraints(ca=True, path_length=None), True)])
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _certificate("127.0.0.1", server_key, "fail2entra test CA", ca_key,
                          [(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)])
    paths = [str(directory / name) for name in ("ca.pem", "server.pem", "server-key.pem")]
    for path, data in zip(paths, (_pem(ca), _pem(server), _key_pem(server_key))):
        with open(path, "wb") as handle:
            handle.write(data)
    return paths[0], paths[1], paths[2]


def make_client_certificate(directory) -> "tuple[str, x509.Certificate]":
    """An app registration's certificate: one PEM file with the certificate and its RSA key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    certificate = _certificate("fail2entra app", key, "fail2entra app", key)
    path = str(directory / "app.pem")
    with open(path, "wb", opener=lambda name, flags: os.open(name, flags, 0o600)) as handle:
        handle.write(_pem(certificate) + _key_pem(key))
    return path, certificate


def iso7(seconds: float) -> str:
    """A createdDateTime as Graph writes it: UTC, seven fraction digits."""
    whole = int(seconds)
    stamp = datetime.datetime.fromtimestamp(whole, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{int(round((seconds - whole) * 1e7)):07d}Z"


def _parse_time(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def signin(upn: str, ip: str, when: float, *, interactive: bool = True, error_code: int = 0,
           signin_id: Optional[str] = None) -> dict:
    """A signIn as Graph returns it (trimmed: the columns the rule reads and some others)."""
    item = {
        "id": signin_id or f"{secrets.token_hex(4)}-{secrets.token_hex(2)}-{secrets.token_hex(2)}-"
                           f"{secrets.token_hex(2)}-{secrets.token_hex(6)}",
        "createdDateTime": iso7(when),
        "userDisplayName": upn.split("@")[0].title(),
        "userPrincipalName": upn,
        "userId": "26be570a-ae82-4189-b4e2-a37c6808512d",
        "appId": "de8bc8b5-d9f9-48b1-a8ad-b748da725064",
        "appDisplayName": "Office 365 Exchange Online",
        "ipAddress": ip,
        "clientAppUsed": "Browser",
        "correlationId": "d79f5bee-5860-4832-928f-3133e22ae912",
        "conditionalAccessStatus": "notApplied",
        "isInteractive": interactive,
        "resourceDisplayName": "Microsoft Graph",
        "status": {"errorCode": error_code, "failureReason": None if error_code == 0 else "Invalid password",
                   "additionalDetails": None},
        "deviceDetail": {"deviceId": "", "operatingSystem": "Windows 10", "browser": "Edge 120.0"},
        "location": {"city": "Redmond", "state": "Washington", "countryOrRegion": "US",
                     "geoCoordinates": {"latitude": 47.68, "longitude": -122.12}},
        "appliedConditionalAccessPolicies": [],
    }
    if not interactive:  # the beta list's marker
        item["signInEventTypes"] = ["nonInteractiveUser"]
    return item


class Request(NamedTuple):
    at: float  # time.monotonic() just before it was answered
    method: str
    path: str
    filter: Optional[str]
    skiptoken: Optional[str]
    status: int
    token: Optional[str]
    ids: tuple  # the sign-ins of a page served


class Fault(NamedTuple):
    path: str  # the request path it applies to (e.g. /v1.0/auditLogs/signIns)
    paged: bool  # only to a page after the first (a request with $skiptoken)
    status: int
    headers: Dict[str, str]
    body: bytes


class GraphServer:
    """Start with ``with GraphServer(tmp_path) as graph:``; ``graph.url`` is its root."""

    def __init__(self, directory, page_size: int = 2, certificate: Optional[x509.Certificate] = None) -> None:
        self.ca_file, cert_file, key_file = make_tls_files(directory)
        self.page_size = page_size
        self.certificate = certificate  # the app's certificate, when it authenticates with one
        self.token_lifetime = 3600  # expires_in of the tokens issued
        self.token_max_age: Optional[float] = None  # tokens older than this are refused (401)
        self.requests: List[Request] = []
        self.tokens: List[tuple] = []  # (token, monotonic time issued)
        self._revoked: set = set()
        self._signins: Dict[bool, List[dict]] = {True: [], False: []}  # by interactive
        self._faults: List[Fault] = []
        self._held: Dict[tuple, threading.Event] = {}  # (path, skiptoken) -> released
        self._lock = threading.Lock()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_file, key_file)
        self._httpd = _QuietServer(("127.0.0.1", 0), _handler(self))
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> "GraphServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        for released in self._held.values():
            released.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- what tests do ---------------------------------------------------------------------

    def add(self, item: dict) -> dict:
        with self._lock:
            self._signins[item.get("isInteractive", True)].append(item)
        return item

    def fail(self, path: str, status: int, headers: Optional[Dict[str, str]] = None, body: bytes = b"",
             paged: bool = False) -> None:
        """The next request to ``path`` (to a page after the first, if ``paged``) gets this
        answer instead; faults queue up in order."""
        with self._lock:
            self._faults.append(Fault(path, paged, status, headers or {}, body))

    def hold(self, path: str, skiptoken: str) -> threading.Event:
        """Requests for that page wait until the returned event is set."""
        released = self._held[path, skiptoken] = threading.Event()
        return released

    def revoke_tokens(self) -> None:
        with self._lock:
            self._revoked.update(token for token, _ in self.tokens)

    def signin_requests(self, status: Optional[int] = None) -> List[Request]:
        with self._lock:
            return [r for r in self.requests if "auditLogs" in r.path and (status is None or r.status == status)]

    # -- serving ---------------------------------------------------------------------------

    def token_endpoint(self) -> str:
        return f"{self.url}/{TENANT}/oauth2/v2.0/token"

    def _issue(self, form: Dict[str, str]) -> "tuple[int, dict]":
        if form.get("grant_type") != "client_credentials" or form.get("client_id") != CLIENT_ID:
            return 400, {"error": "unauthorized_client", "error_description": "AADSTS700016: unknown app"}
        if form.get("scope") != f"{self.url}/.default":
            return 400, {"error": "invalid_scope", "error_description": f"AADSTS70011: scope {form.get('scope')!r}"}
        if not self._credential_ok(form):
            return 401, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}
        token = secrets.token_urlsafe(24)
        with self._lock:
            self.tokens.append((token, time.monotonic()))
        return 200, {"token_type": "Bearer", "expires_in": self.token_lifetime, "ext_expires_in": self.token_lifetime,
                     "access_token": token}

    def _credential_ok(self, form: Dict[str, str]) -> bool:
        if self.certificate is None:
            return form.get("client_secret") == SECRET
        assertion = form.get("client_assertion", "")
        if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            return False
        thumbprint = base64.urlsafe_b64encode(self.certificate.fingerprint(hashes.SHA256())).rstrip(b"=").decode()
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, self.certificate.public_key(), algorithms=["PS256"],
                                audience=self.token_endpoint(), issuer=CLIENT_ID)
        except jwt.InvalidTokenError:
            return False
        # msal writes the thumbprint in standard base64, padded; Entra ID takes that too
        named = str(header.get("x5t#S256", "")).replace("+", "-").replace("/", "_").rstrip("=")
        return named == thumbprint and claims.get("sub") == CLIENT_ID

    def _authorised(self, token: Optional[str]) -> bool:
        with self._lock:
            issued = dict(self.tokens).get(token)
            return issued is not None and token not in self._revoked and (
                self.token_max_age is None or time.monotonic() - issued <= self.token_max_age)

    def _fault(self, path: str, paged: bool) -> Optional[Fault]:
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.path == path and (paged or not fault.paged):
                    return self._faults.pop(index)
        return None

    def _page(self, path: str, query: Dict[str, str]) -> "tuple[int, dict, tuple]":
        expression = query.get("$filter", "")
        match = _FILTER.fullmatch(expression)
        non_interactive = bool(match and match.group(2))
        if match is None or (non_interactive and not path.startswith("/beta/")):
            return 400, {"error": {"code": "BadRequest", "message": f"Invalid filter clause: {expression!r}"}}, ()
        since = _parse_time(match.group(1))
        with self._lock:
            chosen = [item for item in self._signins[not non_interactive] if _parse_time(item["createdDateTime"]) >= since]
        chosen.sort(key=lambda item: item["createdDateTime"], reverse=True)
        start = int(query.get("$skiptoken", "0"))
        page = chosen[start:start + self.page_size]
        body: dict = {"@odata.context": f"{self.url}{path[:6]}$metadata#auditLogs/signIns", "value": page}
        if start + self.page_size < len(chosen):
            body["@odata.nextLink"] = (f"{self.url}{path}?$filter={urllib.parse.quote(expression, safe='')}"
                                       f"&$skiptoken={start + self.page_size}")
        return 200, body, tuple(item["id"] for item in page)


class _QuietServer(ThreadingHTTPServer):
    """Clients that go away mid-answer (a test kills fail2entra) are no news."""

    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass


def _handler(server: GraphServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def _answer(self, status: int, body, headers: Optional[Dict[str, str]] = None,
                    query: Optional[Dict[str, str]] = None, token: Optional[str] = None, ids: tuple = ()) -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            query = query or {}
            with server._lock:  # logged before the client can have the answer
                server.requests.append(Request(time.monotonic(), self.command, self.path.split("?")[0],
                                               query.get("$filter"), query.get("$skiptoken"), status, token, ids))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            query = {name: values[0] for name, values in urllib.parse.parse_qs(parts.query).items()}
            if parts.path == f"/{TENANT}/v2.0/.well-known/openid-configuration":
                root = f"{server.url}/{TENANT}"
                self._answer(200, {"issuer": f"{root}/v2.0", "token_endpoint": server.token_endpoint(),
                                   "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
                                   "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"]})
                return
            if parts.path not in ("/v1.0/auditLogs/signIns", "/beta/auditLogs/signIns"):
                self._answer(404, {"error": {"code": "NotFound", "message": parts.path}})
                return
            authorization = self.headers.get("Authorization", "")
            token = authorization[len("Bearer "):] if authorization.startswith("Bearer ") else None
            if not server._authorised(token):
                self._answer(401, {"error": {"code": "InvalidAuthenticationToken", "message": "Access token has expired."}},
                             query=query, token=token)
                return
            held = server._held.get((parts.path, query.get("$skiptoken")))
            if held is not None:
                held.wait(30)
            fault = server._fault(parts.path, "$skiptoken" in query)
            if fault is not None:
                self._answer(fault.status, fault.body, fault.headers, query, token)
                return
            status, body, ids = server._page(parts.path, query)
            self._answer(status, body, query=query, token=token, ids=ids)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = {name: values[0] for name, values in urllib.parse.parse_qs(self.rfile.read(length).decode()).items()}
            if self.path.split("?")[0] != f"/{TENANT}/oauth2/v2.0/token":
                self._answer(404, {"error": "not_found"})
                return
            status, body = server._issue(form)
            self._answer(status, body)

    return Handler
