"""A TCP relay that makes each new connection cost a handshake's worth of time.

The benchmark runs it as its own process (`python -m bench.handshake`), so
its event loop never competes with the benchmark's own timing loop.

Locally a connection to the stand-in opens in ~0.1 ms; to api.stripe.com it
takes a TCP handshake and a TLS 1.3 handshake, two network round trips
before the first request can leave. The relay reproduces that delay: the
first bytes a client sends on a new connection are held until `delay`
seconds after the connection was accepted; later traffic passes at once
(the stand-in's own latency stands for the request's round trip).

A client that opened its connection ahead of time (see common.stripe_http's
warm-up) has already waited out the delay when its first request leaves;
one that connects on demand pays it in full. That difference is what the
cold-start table measures with `--handshake-ms`.
"""

from __future__ import annotations

import asyncio
import threading
import time


class HandshakeRelay:
    def __init__(self, target_host: str, target_port: int, delay: float, listen_port: int = 0):
        self.target = (target_host, target_port)
        self.delay = delay
        self.port = listen_port
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="handshake-relay", daemon=True)

    def start(self) -> str:
        self._thread.start()
        self._ready.wait(10)
        return f"http://127.0.0.1:{self.port}"

    def wait(self) -> None:
        self._thread.join()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._relay, "127.0.0.1", self.port, backlog=512))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _relay(self, client_reader, client_writer) -> None:
        accepted = time.monotonic()
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        first = await client_reader.read(65536)
        await asyncio.sleep(max(0.0, accepted + self.delay - time.monotonic()))
        upstream_writer.write(first)
        await asyncio.gather(self._pipe(client_reader, upstream_writer), self._pipe(upstream_reader, client_writer))

    @staticmethod
    async def _pipe(reader, writer) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()


def main(argv=None) -> None:
    """Run a relay until killed: python -m bench.handshake --port P --target HOST:PORT --delay-ms MS."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--delay-ms", type=float, required=True)
    args = parser.parse_args(argv)
    host, port = args.target.rsplit(":", 1)
    relay = HandshakeRelay(host, int(port), args.delay_ms / 1000, listen_port=args.port)
    relay.start()
    relay.wait()


if __name__ == "__main__":
    main()
