#!/usr/bin/env python3
"""A minimal receiver for tidegate's HTTP sink, to try a configuration with.

    python3 examples/http_receiver.py --port 9000 [--token SECRET] [--out readings.jsonl]

The sink's `format = "jsonl"` posts gzip-compressed JSON lines, one envelope
per reading (docs/cloud.md). This prints one line per reading (or appends the
envelopes to --out) and answers 204, which acknowledges the batch. A wrong
bearer token gets 401 and an unexpected body 415: the sink retries the first
and dead-letters the second, as a real receiver would make it do.
"""
import argparse
import gzip
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--token", help="bearer token the sink must send (TIDEGATE_SINK_<NAME>_TOKEN)")
    parser.add_argument("--out", help="append each envelope to this file instead of printing a summary")
    args = parser.parse_args()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            if args.token and self.headers.get("Authorization") != "Bearer " + args.token:
                return self.answer(401, "wrong or missing bearer token")
            if not self.headers.get("Content-Type", "").startswith("application/x-ndjson"):
                return self.answer(415, 'this receiver takes format = "jsonl" only')
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            lines = [line for line in body.decode("utf-8").splitlines() if line]
            envelopes = [json.loads(line) for line in lines]
            if args.out:
                with open(args.out, "a", encoding="utf-8") as out:
                    out.writelines(line + "\n" for line in lines)
            else:
                for e in envelopes:
                    print(f'{e.get("gateway")} seq {e["seq"]} {e["topic"]}: {e.get("payload", "(binary)")}')
                sys.stdout.flush()
            self.answer(204)

        def answer(self, status, reason=""):
            self.send_response(status, reason or None)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, fmt, *values):  # one line per reading is enough
            pass

    ThreadingHTTPServer((args.host, args.port), Receiver).serve_forever()


if __name__ == "__main__":
    main()
