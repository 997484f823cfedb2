"""An HTTP/1.1 proxy that delays every request by a fixed latency and counts round trips.

Used by W7 (WORKLOADS.md, `scripts/w7`): floe and Icechunk talk to the same S3 test server
through it, so both pay the same latency per request and are counted the same way.

    python scripts/latency_proxy.py UPSTREAM_URL LATENCY_MS PORT_FILE

It listens on a free loopback port and writes the port to PORT_FILE once it accepts
connections. Every request is held for LATENCY_MS before it is forwarded to UPSTREAM_URL
(`http://host:port`); the response is relayed unchanged.

Counting: a request's *wave* is one more than the highest wave among the requests already
answered when it arrived, so requests sent together share a wave and a request sent after an
answer starts the next one; an operation's round trips are the highest wave reached.
`GET /__meter` (not delayed, not counted) answers with the requests and waves since the last
`GET /__meter` as JSON: {"requests": n, "waves": w, "by_method": {...}}, and starts counting
afresh.
"""

import asyncio
import json
import os
import sys
from collections import Counter
from urllib.parse import urlsplit


class Meter:
    def __init__(self):
        self.reset()

    def reset(self):
        self.completed = 0
        self.highest = 0
        self.requests = 0
        self.methods = Counter()
        self.generation = getattr(self, "generation", 0) + 1

    def start(self, method):
        wave = self.completed + 1
        self.highest = max(self.highest, wave)
        self.requests += 1
        self.methods[method] += 1
        return (self.generation, wave)

    def finish(self, token):
        generation, wave = token
        if generation == self.generation:
            self.completed = max(self.completed, wave)

    def take(self):
        reading = {
            "requests": self.requests,
            "waves": self.highest,
            "by_method": dict(self.methods),
        }
        self.reset()
        return reading


async def read_head(reader):
    """Reads a request or response head; None at a clean end of stream."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            return None
        raise
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return head, lines[0], headers


async def relay_body(reader, writer, headers, no_body=False):
    """Copies a message body (by length, chunked, or none) from reader to writer."""
    if no_body:
        return
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size_line = await reader.readuntil(b"\r\n")
            writer.write(size_line)
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while True:
                    trailer = await reader.readuntil(b"\r\n")
                    writer.write(trailer)
                    if trailer == b"\r\n":
                        return
            writer.write(await reader.readexactly(size + 2))
    length = int(headers.get("content-length", "0"))
    while length > 0:
        block = await reader.read(min(length, 1 << 20))
        if not block:
            raise ConnectionError("the peer closed the connection inside a body")
        writer.write(block)
        length -= len(block)


class Proxy:
    def __init__(self, upstream, latency_s):
        parts = urlsplit(upstream)
        self.host = parts.hostname
        self.port = parts.port or 80
        self.latency_s = latency_s
        self.meter = Meter()

    async def serve_client(self, client_reader, client_writer):
        upstream = None
        try:
            while True:
                head = await read_head(client_reader)
                if head is None:
                    break
                raw, request_line, headers = head
                method, target = request_line.split(" ")[:2]
                if target == "/__meter":
                    body = json.dumps(self.meter.take()).encode()
                    client_writer.write(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                        + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
                        + body
                    )
                    await client_writer.drain()
                    break
                token = self.meter.start(method)
                try:
                    buffer = _Collect()
                    buffer.write(raw)
                    await relay_body(client_reader, buffer, headers)
                    await asyncio.sleep(self.latency_s)
                    if upstream is None:
                        upstream = await asyncio.open_connection(self.host, self.port)
                    up_reader, up_writer = upstream
                    up_writer.write(buffer.bytes())
                    await up_writer.drain()
                    response = await read_head(up_reader)
                    if response is None:
                        raise ConnectionError("the server closed the connection")
                    raw_response, status_line, response_headers = response
                    status = int(status_line.split(" ")[1])
                    client_writer.write(raw_response)
                    no_body = method == "HEAD" or status in (204, 304) or status < 200
                    await relay_body(up_reader, client_writer, response_headers, no_body)
                    await client_writer.drain()
                    if response_headers.get("connection", "").lower() == "close":
                        up_writer.close()
                        upstream = None
                finally:
                    self.meter.finish(token)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if upstream is not None:
                upstream[1].close()
            client_writer.close()


class _Collect:
    """A writer that collects bytes (a request is forwarded whole after its delay)."""

    def __init__(self):
        self.parts = []

    def write(self, data):
        self.parts.append(data)

    def bytes(self):
        return b"".join(self.parts)


async def main():
    upstream, latency_ms, port_file = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    proxy = Proxy(upstream, latency_ms / 1000.0)
    server = await asyncio.start_server(proxy.serve_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    with open(port_file + ".tmp", "w") as f:
        f.write(str(port))
    os.replace(port_file + ".tmp", port_file)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
