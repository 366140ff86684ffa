"""The ``nginx`` (and ``httpd``) image's server: this file, run alone (``python3 -I -S webserver.py``).

Python's ``http.server`` (its request handler, its pages, its log lines), started with two
changes:

- **It listens first.** nginx listens within milliseconds of its start, and ``docker run -d
  nginx`` returns once the server listens (:func:`~.container_jobs.wait_listening`). Importing
  ``http.server`` (``email``, ``http.client``, ``re``...) costs Python about a second in the VM's
  guest, which runs without KVM (benchmarks/README.md). So the socket is made with ``_socket``
  alone, the arguments read without ``argparse``, and only then is ``http.server`` imported: a
  request that comes meanwhile waits in the socket's backlog, held by the kernel, and is answered
  once the handler is there.
- **It does not look itself up in DNS.** ``http.server``'s ``HTTPServer.server_bind`` calls
  ``socket.getfqdn()`` on the address it binds, a reverse lookup of ``0.0.0.0``: inside a lab
  container that is a DNS query sent towards the machine's resolver through a lab with no uplink.
  Where nothing answers (no ICMP error either) the server starts listening only after the
  resolver's 5-second timeout, and it is a packet nobody asked for in a lab about watching
  packets. nginx looks nothing up when it starts; neither does this (its socket is bound here,
  so ``server_bind`` never runs).

Standard library only: the image copies this file beside its page and runs it isolated, without
``site`` and without this package (:mod:`.images`). Usage (what the image runs)::

    python3 -I -S /run/netlab-docker/webserver.py 80 --bind 0.0.0.0 --directory /run/netlab-docker/nginx
"""

from __future__ import annotations

import sys

USAGE = "usage: webserver.py [-h] [--bind ADDRESS] [--directory DIRECTORY] [port]"
#: the backlog ``socketserver.TCPServer`` listens with (its ``request_queue_size``)
BACKLOG = 5


def parse(argv: list[str]) -> tuple[int, str, str]:
    """``[port] [--bind ADDRESS] [--directory DIRECTORY]`` -> (port, address, directory); argparse's
    usage and words on a mistake (exit status 2)."""
    options = {"--bind": "0.0.0.0", "--directory": "."}
    port: int | None = None
    words = iter(argv)
    for word in words:
        name, equals, value = word.partition("=")
        if word in ("-h", "--help"):
            print(USAGE, "Serve a directory over HTTP, as the lab's nginx.", sep="\n\n")
            sys.exit(0)
        elif name in options:
            given = value if equals else next(words, None)
            if given is None:
                _refuse(f"argument {name}: expected one argument")
            options[name] = given
        elif port is None and word.isdigit():
            port = int(word)
        elif port is None and not word.startswith("-"):
            _refuse(f"argument port: invalid int value: {word!r}")
        else:
            _refuse(f"unrecognized arguments: {word}")
    return (80 if port is None else port), options["--bind"], options["--directory"]


def _refuse(message: str) -> None:
    print(USAGE, f"webserver.py: error: {message}", sep="\n", file=sys.stderr)
    sys.exit(2)


def listen(address: str, port: int):  # noqa: ANN201 - a _socket.socket
    """A TCP socket listening on ``address``:``port``, made as ``socketserver.TCPServer`` makes
    it (``SO_REUSEADDR``, a backlog of 5), with nothing imported but ``_socket``."""
    import _socket

    sock = _socket.socket(_socket.AF_INET6 if ":" in address else _socket.AF_INET, _socket.SOCK_STREAM)
    try:
        sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


def main(argv: list[str] | None = None) -> None:
    port, address, directory = parse(sys.argv[1:] if argv is None else argv)
    listening = listen(address, port)
    import functools  # noqa: E402 - after listen(): what a request that came meanwhile waits for
    import http.server
    import socket

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=directory)
    httpd = http.server.ThreadingHTTPServer((address, port), handler, bind_and_activate=False)
    httpd.socket.close()  # the one it made, never bound: ours serves
    httpd.socket = socket.socket(fileno=listening.detach())
    httpd.server_address = httpd.socket.getsockname()
    httpd.server_name, httpd.server_port = httpd.server_address[:2]  # what server_bind would set, unlooked-up
    with httpd:
        print(f"Serving HTTP on {address} port {port} (http://{address}:{port}/) ...", flush=True)
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
