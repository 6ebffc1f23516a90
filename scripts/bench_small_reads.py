#!/usr/bin/env python3
"""Small reads under concurrency, as an independent gRPC client sees them (issue 10.18).

Python grpcio is the client on purpose: it is the kind of client (like grpcurl) that
showed the Nagle / delayed-ACK stall — a server writing a reply's trailers in a second
small packet without TCP_NODELAY waits ~40 ms for the client's delayed ACK. The project's
own tonic client hides it.

    pip install grpcio
    python3 scripts/bench_small_reads.py HOST:PORT TOKEN [--clients 8] [--calls 400]

Each of CLIENTS processes (one channel each; processes, so Python's GIL does not add its
own queueing to the latencies) calls, in turn, the standard health check,
`CatalogService/ListModels` and `BusinessRequestService/ListBusinessRequests` (one page of
50) CALLS times; it prints p50 / p99 / max per method in milliseconds. Requests are sent
as empty protobuf messages (every field at its default), so no generated code is needed.
"""

import argparse
import multiprocessing
import statistics
import time

import grpc

METHODS = [
    ("health Check", "/grpc.health.v1.Health/Check", b""),
    ("ListModels", "/finops.v1.CatalogService/ListModels", b""),
    # page_size = 50: field 1, varint.
    ("ListBusinessRequests", "/finops.v1.BusinessRequestService/ListBusinessRequests", b"\x08\x32"),
]


def run_client(target, token, calls, out=None):
    out = {} if out is None else out
    channel = grpc.insecure_channel(target)
    stubs = [
        (name, channel.unary_unary(path, request_serializer=None, response_deserializer=None), body)
        for name, path, body in METHODS
    ]
    metadata = [("authorization", f"Bearer {token}")]
    for _ in range(calls):
        for name, stub, body in stubs:
            started = time.perf_counter()
            stub(body, metadata=metadata, timeout=10)
            out.setdefault(name, []).append((time.perf_counter() - started) * 1000)
    channel.close()
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("target")
    parser.add_argument("token")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--calls", type=int, default=400)
    args = parser.parse_args()
    # Warm-up: connections, caches.
    run_client(args.target, args.token, 20, {})
    started = time.perf_counter()
    with multiprocessing.Pool(args.clients) as pool:
        results = pool.starmap(run_client, [(args.target, args.token, args.calls)] * args.clients)
    seconds = time.perf_counter() - started
    print(f"{args.clients} clients × {args.calls} calls of each method in {seconds:.1f} s")
    print(f"{'METHOD':<22} {'CALLS':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, _, _ in METHODS:
        samples = sorted(s for r in results for s in r.get(name, []))
        p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
        print(f"{name:<22} {len(samples):>6} {statistics.median(samples):>8.2f} {p99:>8.2f} {samples[-1]:>8.2f}")


if __name__ == "__main__":
    main()
