"""The role a run plays, from its options: one process that sees everything (the default), an
edge collector (``--edge``, its summaries split with ``--shards N``), or a central that merges
summaries (``--accept-summaries``) and may own one shard of several (``--shard K/N``).
Combinations that make no sense are refused with the reason (ValueError)."""

import socket
from typing import Callable, List, Sequence

from parsers.address import canonical_ip, is_loopback

from ..engine import Engine, Settings
from .edge import EdgeEngine
from .summary import summary_tag


def check_role(config) -> None:
    """Refuse options that contradict the role; ValueError says which and why."""
    if config.shards > 1 and not config.edge:
        raise ValueError("--shards is for an edge, which splits its summaries; a central owns one shard: --shard K/N")
    if not config.edge:
        return
    for name, given in (("--accept-summaries", config.accept_summaries), ("--shard", config.shard),
                        ("--state", config.state), ("--explain", config.explain)):
        if given:
            raise ValueError(f"{name} is not for an edge: an edge summarises failures for a central, holds "
                             f"them for at most --flush-interval and correlates nothing")
    if config.forward and not (config.forward_tls and config.forward_shared_key_file) \
            and not _stays_on_this_host(config.forward):
        raise ValueError("a summary can blame any IP, so an edge sends it off this host only with --forward-tls "
                         "and --forward-shared-key-file (or to the local Fluent Bit / Fluentd over loopback or a "
                         "unix socket, which forwards it securely)")


def _stays_on_this_host(address: str) -> bool:
    from ..forward import parse_address  # only with --forward: ssl takes 5 MB

    target = parse_address(address)
    if target.unix_path or target.host == "localhost":
        return True
    key = canonical_ip(target.host)
    return key is not None and is_loopback(key)


def record_tags(config) -> List[str]:
    """The tags of the records this run sends: its alerts', or an edge's summaries' (one per shard)."""
    if config.edge:
        return [summary_tag(config.summary_tag, shard, config.shards) for shard in range(config.shards)]
    return [config.tag]


def build_engine(config, settings: Settings, profile, emit: Callable[..., None], report: Callable[[str, str], None],
                 failure_exclusions: Sequence, signin_exclusions: Sequence) -> Engine:
    """The engine of this role. ``emit(record, event_time[, tag])`` takes alerts, or an edge's
    summary records with their tags."""
    check_role(config)
    if config.edge:
        return EdgeEngine(settings, profile, emit, report, failure_exclusions, signin_exclusions,
                          edge_name=config.edge_name or socket.gethostname(), shards=config.shards,
                          flush_interval=config.flush_interval, summary_tag=config.summary_tag)
    return Engine(settings, profile, emit, report, failure_exclusions, signin_exclusions,
                  accept_summaries=config.accept_summaries,
                  owns=config.shard.owns if config.shard is not None else None)
