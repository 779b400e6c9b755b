"""Sign-ins fetched by fail2entra itself (``--signins graph``): a thread polls Microsoft Graph
for Entra ID sign-ins and the main loop hands them to the engine between reads of the host
logs, through the same reader as every other record.

    credentials.py  the app registration's secret or certificate, checked at start
    graph.py        HTTPS, the token (msal) and the sign-in pages; failures sorted by kind
    poller.py       the thread: schedule, paging, back-off, the queue to the main thread
    cursors.py      where each log was read up to, and the ids already handed (de-duplication)
    feed.py         the main thread's side: start, stop, new sign-ins, health figures

Imported only when ``--signins graph`` is given (msal and requests take a while to load).
"""

from .feed import GraphSignins

__all__ = ["GraphSignins"]
