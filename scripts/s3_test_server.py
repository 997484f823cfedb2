"""A local S3-compatible server for floe's S3 tests (moto), on 127.0.0.1 only.

Usage: python scripts/s3_test_server.py PORT_FILE BUCKET [BUCKET...]

Binds a free loopback port, creates the buckets through the S3 API, then writes the port to
PORT_FILE (its appearance means "ready") and serves until terminated. Requests are served
one at a time: moto checks a conditional write's precondition and then stores the object
as two steps, so serving requests concurrently would let two create-if-absent writes of one
key both succeed, which real S3 never allows.

With FLOE_S3_SERVER_THREADED=1 requests are served concurrently, as real S3 does, for
measurements with a single writer (W7), where that race cannot happen; a latency
measurement against a server that answers one request at a time would charge requests sent
together as if they were sent one after another.
"""

import os
import sys
import threading

import boto3
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server


def main() -> None:
    port_file, buckets = sys.argv[1], sys.argv[2:]
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(
        "127.0.0.1",
        0,
        app,
        threaded=os.environ.get("FLOE_S3_SERVER_THREADED") == "1",
        request_handler=MotoRequestHandler,
    )
    port = server.server_port
    os.environ["MOTO_PORT"] = str(port)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()

    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="floe-test",
        aws_secret_access_key="floe-test",
    )
    for bucket in buckets:
        client.create_bucket(Bucket=bucket)

    with open(port_file + ".tmp", "w") as f:
        f.write(str(port))
    os.replace(port_file + ".tmp", port_file)
    serving.join()


if __name__ == "__main__":
    main()
