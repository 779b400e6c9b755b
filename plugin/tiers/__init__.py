"""The two-tier topology (docs/edge.md): edge collectors that summarise failures where the lines
are born (edge.py, summary.py), centrals that merge them, and shards that split the IPs between
centrals by a stable hash (shards.py); roles.py picks the engine a run needs."""
