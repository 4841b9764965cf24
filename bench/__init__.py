"""Performance benchmark of the payment functions: `make bench` (see bench/__main__.py).

It measures what a buyer and Google Cloud's autoscaler feel: cold starts
against minimal functions doing the same job, throughput and latency under
concurrent load against a Node/Express equivalent, webhook deliveries, and
memory. Results go to bench/results.md.
"""
