"""docker-proxy, the lab's: a TCP forwarder started as ``python -m netlab_magic.docker.proxy``.

Takes the arguments Docker's ``docker-proxy`` takes (the talk's slide shows them)::

    python -m netlab_magic.docker.proxy -proto tcp -host-ip 0.0.0.0 -host-port 8888 \\
        -container-ip 172.17.0.2 -container-port 80

It listens on HOST-IP:HOST-PORT and copies every connection to CONTAINER-IP:CONTAINER-PORT
(one thread per direction). Once it listens it prints ``docker-proxy listening on IP:PORT``;
if it cannot, Docker's error (``Error starting userland proxy: listen tcp4 ...: bind: address
already in use``) and exits 1. The engine runs it as a lab job in the lab's host.
"""

from __future__ import annotations

import socket
import sys
import threading

READY = "docker-proxy listening on"


def pipe(src: socket.socket, dst: socket.socket) -> None:
    """Copy ``src`` to ``dst`` until ``src`` ends, then end ``dst``'s writing side."""
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def serve(client: socket.socket, target: tuple[str, int]) -> None:
    """Forward one accepted connection to ``target``, both ways."""
    try:
        upstream = socket.create_connection(target, timeout=10)
        upstream.settimeout(None)
    except OSError:
        client.close()
        return
    back = threading.Thread(target=pipe, args=(upstream, client), daemon=True)
    back.start()
    pipe(client, upstream)
    back.join()
    client.close()
    upstream.close()


def main(argv: list[str]) -> int:
    args = dict(zip(argv[0::2], argv[1::2]))
    if args.get("-proto", "tcp") != "tcp":
        print(f"Error starting userland proxy: this lab's docker-proxy forwards tcp only, "
              f"not {args['-proto']}", flush=True)
        return 1
    host_ip, host_port = args["-host-ip"], int(args["-host-port"])
    target = (args["-container-ip"], int(args["-container-port"]))
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        srv.bind((host_ip, host_port))
        srv.listen(128)
    except OSError as err:
        print(f"Error starting userland proxy: listen tcp4 {host_ip}:{host_port}: bind: "
              f"{(err.strerror or str(err)).lower()}", flush=True)
        return 1
    print(f"{READY} {host_ip}:{host_port}", flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn, target), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
