#!/usr/bin/env python3
"""The MLMD oracle: Google's own MLMD engine served over plain gRPC on localhost.

The `ml-metadata` wheel ships the C++ engine as a Python extension (its pybind module takes and
returns serialized request and response messages, one function per RPC). This server forwards
each `ml_metadata.MetadataStoreService` RPC to that extension, over a fresh in-memory SQLite
database (`ConnectionConfig.fake_database`), so the real client can be pointed at it and at
metamesh alike and the answers compared (tests/mlmd/suite.py, crates/metamesh/tests/t70_mlmd_diff.rs).

Usage:

    oracle_server.py [--host 127.0.0.1] [--port 0] [--ignore-stdin]

`--port 0` (the default) takes a free port. Once serving it prints `LISTENING <port>` on stdout.
It stops on SIGTERM or SIGINT, and when its stdin reaches end of file (so a parent that dies
takes it along) unless `--ignore-stdin` is given (for running it by hand with stdin closed).

RPCs the extension has no binding for (GetParentContextsByContexts,
GetChildrenContextsByContexts, GetLineageGraph in ml-metadata 1.17.1) are not registered: gRPC
answers them UNIMPLEMENTED. Their names are printed on stderr at start.
"""

import argparse
import os
import signal
import sys
import threading
from concurrent import futures

import grpc
from ml_metadata.metadata_store.pywrap.metadata_store_extension import metadata_store as engine
from ml_metadata.proto import metadata_store_pb2, metadata_store_service_pb2

SERVICE = metadata_store_service_pb2.DESCRIPTOR.services_by_name["MetadataStoreService"]

# absl status codes, which the engine returns, have the same numbers as gRPC's.
CODES = {code.value[0]: code for code in grpc.StatusCode}


def new_store():
    """A fresh MLMD store on an in-memory SQLite database."""
    config = metadata_store_pb2.ConnectionConfig()
    config.fake_database.SetInParent()
    migration = metadata_store_pb2.MigrationOptions()
    return engine.CreateMetadataStore(config.SerializeToString(), migration.SerializeToString())


def handler_for(store, method):
    """A unary handler forwarding `method` to the engine's function of the same name."""
    request_cls = getattr(metadata_store_service_pb2, method.input_type.name)
    response_cls = getattr(metadata_store_service_pb2, method.output_type.name)
    call = getattr(engine, method.name)

    def handle(request, context):
        payload, message, code = call(store, request.SerializeToString())
        if code != 0:
            status = CODES.get(code, grpc.StatusCode.UNKNOWN)
            text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
            context.abort(status, text)
        return response_cls.FromString(payload)

    return grpc.unary_unary_rpc_method_handler(
        handle,
        request_deserializer=request_cls.FromString,
        response_serializer=response_cls.SerializeToString,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 (default): any free port")
    parser.add_argument("--ignore-stdin", action="store_true", help="do not stop when stdin closes")
    args = parser.parse_args()

    store = new_store()
    handlers = {}
    for method in SERVICE.methods:
        if hasattr(engine, method.name):
            handlers[method.name] = handler_for(store, method)
        else:
            print(f"oracle: no engine binding for {method.name}: answered UNIMPLEMENTED", file=sys.stderr)

    # One worker: the engine's store is used from one thread at a time, so every request sees
    # the effects of all earlier ones (what a single MLMD server over one database does).
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE.full_name, handlers),))
    port = server.add_insecure_port(f"{args.host}:{args.port}")
    if port == 0:
        print(f"oracle: cannot listen on {args.host}:{args.port}", file=sys.stderr)
        return 1
    server.start()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if not args.ignore_stdin:
        stdin_fd = sys.stdin.fileno()

        def watch_stdin():
            # Blocks until the parent closes our stdin (or dies). A raw read: a thread blocked in
            # the buffered reader would hold its lock at interpreter shutdown.
            try:
                while os.read(stdin_fd, 4096):
                    pass
            except OSError:
                pass
            finally:
                stop.set()

        threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()

    print(f"LISTENING {port}", flush=True)
    # A timed wait, so that the signal handlers run promptly on the main thread.
    while not stop.wait(0.2):
        pass
    server.stop(grace=0.5).wait()
    sys.stdout.flush()
    sys.stderr.flush()
    # No interpreter shutdown: the stdin thread may still be blocked in its read.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
