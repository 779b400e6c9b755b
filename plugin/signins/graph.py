"""Microsoft Graph over HTTPS: an app-only token from Entra ID through msal (OAuth 2.0 client
credentials), the pages of the sign-in lists, and every way a request can fail sorted into the
few kinds the poller counts and backs off on.

msal caches the token and fetches a new one before it expires (5 minutes ahead, or when the
token service says to refresh it); a 401 from Graph drops the cached token and the request is
tried once more with a fresh one.
"""

import email.utils
import ssl
import time
import urllib.parse
from typing import Any, List, NamedTuple, Optional, Union

import msal
import msal.exceptions
import msgspec
import requests
import requests.adapters

from parsers.event import NON_INTERACTIVE_SIGNIN_LOGS, SIGNIN_LOGS, short_reason

from ..config import ConfigError

# connect, read: Graph may take many seconds to assemble a page of 1,000 sign-ins
REQUEST_TIMEOUT = (10.0, 120.0)
LONGEST_RETRY_AFTER = 3600.0
# Per table: the API version and what narrows the list to that log. The v1.0 list holds the
# interactive sign-ins; only the beta one has signInEventTypes, to ask for the others.
ENDPOINTS = {
    SIGNIN_LOGS: ("v1.0", ""),
    NON_INTERACTIVE_SIGNIN_LOGS: ("beta", " and signInEventTypes/any(t: t eq 'nonInteractiveUser')"),
}
ERROR_KINDS = ("throttled", "unavailable", "http", "network", "token", "malformed_page", "unexpected")

Credential = Union[str, dict]  # a client secret, or msal's certificate dict


class GraphError(Exception):
    """A failed request: ``kind`` is one of ERROR_KINDS; ``retry_after`` the seconds the
    service asked to wait (429, 503, 504), when it said."""

    def __init__(self, kind: str, message: str, retry_after: Optional[float] = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after


class Page(NamedTuple):
    items: List[Any]  # the decoded members of "value", whatever they are
    next_link: Optional[str]


class _Session(requests.Session):
    """A requests session whose calls time out (msal calls it without a timeout)."""

    def request(self, method, url, **kwargs):  # type: ignore[override]
        kwargs.setdefault("timeout", REQUEST_TIMEOUT)
        return super().request(method, url, **kwargs)


class _TrustingAdapter(requests.adapters.HTTPAdapter):
    """HTTPS that also trusts the CAs of --ca-file, besides the usual ones."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):  # type: ignore[override]
        kwargs["ssl_context"] = self._context
        return super().init_poolmanager(*args, **kwargs)


def https_session(ca_file: str) -> requests.Session:
    """The session for the token service and Graph; ConfigError when --ca-file is unusable."""
    session = _Session()
    if ca_file:
        context = ssl.create_default_context()
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as error:
            raise ConfigError(f"--ca-file {ca_file}: {short_reason(error)}") from None
        session.mount("https://", _TrustingAdapter(context))
    return session


class GraphClient:
    """Fetches sign-in pages for the poller thread (which alone uses it)."""

    def __init__(self, graph_url: str, login_url: str, tenant_id: str, client_id: str,
                 credential: Credential, ca_file: str) -> None:
        self.graph_url = graph_url
        self._authority = f"{login_url}/{tenant_id}"
        self._client_id = client_id
        self._credential = credential
        self._scopes = [f"{graph_url}/.default"]  # the national cloud's own Graph host
        self._session = https_session(ca_file)
        self._application: Optional[msal.ConfidentialClientApplication] = None

    def first_url(self, table: str, since: float) -> str:
        """The first page of ``table`` from ``since`` on (whole seconds, rounded down)."""
        version, narrowing = ENDPOINTS[table]
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(since)))
        query = urllib.parse.quote(f"createdDateTime ge {stamp}{narrowing}", safe="")
        return f"{self.graph_url}/{version}/auditLogs/signIns?$filter={query}"

    def page(self, url: str) -> Page:
        """One page of a sign-in list; GraphError when it cannot be had."""
        response = self._get(url, self._token())
        if response.status_code == 401:  # expired or revoked early: one more try, new token
            self._application.remove_tokens_for_client()
            response = self._get(url, self._token())
        status = response.status_code
        if status == 200:
            return self._parse(response.content)
        detail = f"HTTP {status}{_graph_error(response.content)}"
        if status == 429:
            raise GraphError("throttled", detail, _retry_after(response))
        if status in (503, 504):
            raise GraphError("unavailable", detail, _retry_after(response))
        raise GraphError("http", detail)

    def _get(self, url: str, token: str) -> requests.Response:
        try:
            return self._session.get(url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
        except requests.RequestException as error:
            raise GraphError("network", short_reason(error)) from None

    def _token(self) -> str:
        """The cached token, or a new one from the token service."""
        try:
            if self._application is None:  # reads the tenant's OpenID configuration
                self._application = msal.ConfidentialClientApplication(
                    self._client_id, client_credential=self._credential, authority=self._authority,
                    http_client=self._session,
                    # The login URL is the operator's choice (--login-url): no check of it
                    # against Microsoft's list of clouds (which a private or test one fails).
                    instance_discovery=False)
            result = self._application.acquire_token_for_client(scopes=self._scopes)
        except requests.RequestException as error:
            raise GraphError("network", f"token service: {short_reason(error)}") from None
        except (ValueError, msal.exceptions.MsalError) as error:  # no OpenID configuration, a bad answer
            raise GraphError("token", short_reason(error)) from None
        if "access_token" not in result:
            description = str(result.get("error_description") or "").split("\n", 1)[0]
            raise GraphError("token", f"{result.get('error')}: {description}")
        return result["access_token"]

    def _parse(self, body: bytes) -> Page:
        try:
            page = msgspec.json.decode(body)
        except msgspec.DecodeError as error:
            raise GraphError("malformed_page", f"not JSON: {short_reason(error)}") from None
        if not isinstance(page, dict) or not isinstance(page.get("value"), list):
            raise GraphError("malformed_page", "no \"value\" list")
        next_link = page.get("@odata.nextLink")
        # the next link gets our token: it must lead back to Graph, nowhere else
        if next_link is not None and not (isinstance(next_link, str) and next_link.startswith(self.graph_url + "/")):
            raise GraphError("malformed_page", f"@odata.nextLink {str(next_link)[:100]!r} is not on {self.graph_url}")
        return Page(page["value"], next_link)


def _graph_error(body: bytes) -> str:
    """``": code: message"`` from Graph's error body, when it has one."""
    try:
        error = msgspec.json.decode(body).get("error")
        return f": {error.get('code')}: {str(error.get('message'))[:200]}"
    except (msgspec.DecodeError, AttributeError):
        return ""


def _retry_after(response: requests.Response) -> Optional[float]:
    """Retry-After in seconds (a number or an HTTP date), at most an hour; None if absent."""
    value = response.headers.get("Retry-After", "").strip()
    if value.isdigit() and value.isascii():
        seconds = float(value)
    else:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError):
            return None
    return min(max(seconds, 0.0), LONGEST_RETRY_AFTER)
