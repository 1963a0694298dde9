#!/usr/bin/env python3
"""Test helper between toolhost and a model endpoint, on a port the kernel picks (printed first).

proxy LOG              an HTTP proxy: absolute-form requests (plain http) and CONNECT tunnels;
                       every request line it gets is appended to LOG.
tls CERT KEY HOST:PORT a TLS front: TLS in, plain HTTP out to HOST:PORT.
tcp LOG HOST:PORT      a byte pipe to HOST:PORT that appends a line to LOG per connection.

Through the proxy and the TLS front each connection carries one request (the answer is streamed
back, then the connection closes), which is enough for a client that reconnects, as curl does.
"""
import socket
import ssl
import sys
import threading
import urllib.parse


def pump(source, sink):
    """Copies until source ends, then ends sink's sending side."""
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
    except OSError:
        pass
    try:
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def read_request(sock):
    """The head's lines and the whole body (by Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None, b""
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    length = next((int(l.split(":", 1)[1]) for l in lines[1:] if l.lower().startswith("content-length:")), 0)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return lines, body


def forward(lines, body, target, upstream):
    """Sends the request on with `target` as its request line's target and Connection: close."""
    method, _, version = lines[0].split(" ")
    kept = [l for l in lines[1:] if not l.lower().startswith(("proxy-", "connection:"))]
    head = "\r\n".join([f"{method} {target} {version}", *kept, "Connection: close"]) + "\r\n\r\n"
    upstream.sendall(head.encode("latin-1") + body)


def both_ways(client, upstream):
    """Copies each way until both ends are done, then closes both."""
    back = threading.Thread(target=pump, args=(upstream, client), daemon=True)
    back.start()
    pump(client, upstream)
    back.join()
    upstream.close()
    client.close()


def connect(address):
    host, port = address.rsplit(":", 1)
    return socket.create_connection((host, int(port)))


def answer_back(upstream, client):
    """Streams the answer to the client as it comes, then closes both."""
    pump(upstream, client)
    upstream.close()
    client.close()


def proxy(client, log):
    lines, body = read_request(client)
    if lines is None:
        client.close()
        return
    method, target, _ = lines[0].split(" ")
    with open(log, "a") as f:
        f.write(f"{method} {target}\n")
    if method == "CONNECT":
        upstream = connect(target)
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        if body:
            upstream.sendall(body)
        both_ways(client, upstream)
        return
    url = urllib.parse.urlsplit(target)
    upstream = socket.create_connection((url.hostname, url.port or 80))
    forward(lines, body, (url.path or "/") + (f"?{url.query}" if url.query else ""), upstream)
    answer_back(upstream, client)


def tcp_pipe(client, log, address):
    with open(log, "a") as f:
        f.write("connection\n")
    both_ways(client, connect(address))


def tls_front(client, address):
    lines, body = read_request(client)
    if lines is None:
        client.close()
        return
    upstream = connect(address)
    forward(lines, body, lines[0].split(" ")[1], upstream)
    answer_back(upstream, client)


def main():
    mode = sys.argv[1]
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    if mode == "tls":
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[2], sys.argv[3])
    print(listener.getsockname()[1], flush=True)
    while True:
        client, _ = listener.accept()

        def serve(client=client):
            try:
                if mode == "proxy":
                    proxy(client, sys.argv[2])
                elif mode == "tcp":
                    tcp_pipe(client, sys.argv[2], sys.argv[3])
                else:
                    # A client that refuses the certificate ends the handshake: nothing to serve.
                    tls_front(context.wrap_socket(client, server_side=True), sys.argv[4])
            except (OSError, ssl.SSLError):
                client.close()

        threading.Thread(target=serve, daemon=True).start()


if __name__ == "__main__":
    main()
