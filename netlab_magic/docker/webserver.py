"""The ``nginx`` (and ``httpd``) image's server: this file, run alone (``python3 -I -S webserver.py``).

Python's ``http.server`` (its request handler, its pages, its log lines), started with one
change: it does not look itself up in DNS. ``http.server``'s ``HTTPServer.server_bind`` calls
``socket.getfqdn()`` on the address it binds, a reverse lookup of ``0.0.0.0``: inside a lab
container that is a DNS query sent towards the machine's resolver through a lab with no uplink.
Where nothing answers (no ICMP error either) the server starts listening only after the
resolver's 5-second timeout, and it is a packet nobody asked for in a lab about watching
packets. nginx looks nothing up when it starts; neither does this.

Standard library only: the image copies this file beside its page and runs it isolated, without
``site`` and without this package (:mod:`.images`). Usage (what the image runs)::

    python3 -I -S /run/netlab-docker/webserver.py 80 --bind 0.0.0.0 --directory /run/netlab-docker/nginx
"""

from __future__ import annotations

import argparse
import functools
import http.server
import socketserver


class Server(http.server.ThreadingHTTPServer):
    """``http.server``'s threading server, naming itself by the address it binds."""

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = host, port


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="webserver.py",
                                     description="Serve a directory over HTTP, as the lab's nginx.")
    parser.add_argument("port", type=int, nargs="?", default=80)
    parser.add_argument("--bind", default="0.0.0.0", metavar="ADDRESS")
    parser.add_argument("--directory", default=".")
    args = parser.parse_args(argv)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=args.directory)
    with Server((args.bind, args.port), handler) as httpd:
        print(f"Serving HTTP on {args.bind} port {args.port} (http://{args.bind}:{args.port}/) ...", flush=True)
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
