# unitcoder sandbox: the server-zygote-child message stream (appended to harness.py; one module,
# server side). Each message is an 8-byte length and a marshal body (marshal: code objects travel
# as they are, and only trusted processes are on either end); file descriptors ride with its first
# byte. Who sends what is told in _Zygote._zygote (zygote.py).

def _send(sock, obj, fds=()):
    """One message on the server-zygote stream: 8-byte length, marshal body, fds with the first byte."""
    data = _marshal.dumps(obj)
    frame = len(data).to_bytes(8, "little") + data
    sent = _socket.send_fds(sock, [frame], list(fds)) if fds else sock.send(frame)
    if sent < len(frame):
        sock.sendall(frame[sent:])


def _recv_exact(sock, n, fds):
    buf = bytearray()
    while len(buf) < n:
        if fds is not None and not buf:
            data, got, _flags, _addr = _socket.recv_fds(sock, n, 8)
            fds.extend(got)
        else:
            data = sock.recv(n - len(buf))
        if not data:
            raise EOFError("the other end of the zygote socket closed")
        buf += data
    return bytes(buf)


def _recv(sock):
    fds = []
    n = int.from_bytes(_recv_exact(sock, 8, fds), "little")
    return _marshal.loads(_recv_exact(sock, n, None)), fds
