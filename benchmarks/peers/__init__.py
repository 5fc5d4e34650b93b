"""Peers that ingest is measured against, run on the same sandbox in the same benchmark.

- :mod:`benchmarks.peers.seed`: the 2020 seed script's algorithm, ported to a gRPC channel.
- :mod:`benchmarks.peers.sdk`: the official ``clarifai`` SDK's ``Dataset.upload_dataset``.
- :mod:`benchmarks.peers.trace`: a logging gRPC proxy that records which RPCs a peer makes.
- :mod:`benchmarks.peers.counts`: what the seed and SDK peers count of their calls.

Each peer module has a ``run_*`` function returning a JSON-ready dict and a command line
printing that dict as one JSON line. Nothing here imports the ``clarifai`` SDK at import time.
"""
