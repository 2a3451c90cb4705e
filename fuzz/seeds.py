#!/usr/bin/env python3
"""Writes the hand-made seed inputs of every fuzz target into fuzz/corpus/<target>/
(file name = sha1 of the content, as libFuzzer names its own). Run once from the
repository root; the minimized corpus that `cargo fuzz cmin` leaves is what is
committed. See docs/fuzzing.md."""
import hashlib, json, os, struct, sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
H64 = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
H128 = "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


NAMES = ["library/alpine", "a", "a/b/c", "my-app", "a__b", "a--b", "a.b_c", "x" * 255,
         "ghcr.io/x", "", "A", "a//b", "/a", "a/", "..", "a/../b", "a___b", "a\\b", "a..b",
         "x" * 256, "a-", "-a", "_a", "a._b", "a/.b", "caf\u00e9"]
TAGS = ["latest", "v1.0.0", "_x", "a" * 128, "a" * 129, ".x", "-x", "a/b", "", "1.2.3-rc1_build.7",
        "sha256", "t\u00e9"]
DIGESTS = ["sha256:" + H64, "sha512:" + H128, "sha256:" + H64.upper(), "sha256:" + H64[:-1],
           "sha256:" + H64 + "0", "sha384:" + H64, "md5:d41d8cd98f00b204e9800998ecf8427e",
           "sha256:", ":", "sha256", "SHA256:" + H64, "sha256+b64u:abc", "sha256:" + H64[:-1] + "g"]

for n in NAMES:
    put("repo_name", n)
for t in TAGS:
    put("tag", t)
for x in TAGS + DIGESTS:
    put("reference", x)
for d in DIGESTS:
    put("digest", d)

# Manifests: byte 0 picks the Content-Type (0 none, 1-6 a known type, 7 the
# first line of the rest), as fuzz_targets/manifest.rs reads it.
OCI_M = "application/vnd.oci.image.manifest.v1+json"
OCI_I = "application/vnd.oci.image.index.v1+json"
DOCKER_M = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_L = "application/vnd.docker.distribution.manifest.list.v2+json"
desc = lambda mt, h=H64, size=2, **kw: dict({"mediaType": mt, "digest": "sha256:" + h, "size": size}, **kw)
config = desc("application/vnd.oci.image.config.v1+json", size=1234)
layer = desc("application/vnd.oci.image.layer.v1.tar+gzip", size=32654)
image = {"schemaVersion": 2, "mediaType": OCI_M, "config": config, "layers": [layer]}
docker = {"schemaVersion": 2, "mediaType": DOCKER_M,
          "config": desc("application/vnd.docker.container.image.v1+json", size=1469),
          "layers": [desc("application/vnd.docker.image.rootfs.diff.tar.gzip", size=2811478),
                     desc("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", size=77,
                          urls=["https://example.invalid/layer"])]}
index = {"schemaVersion": 2, "mediaType": OCI_I, "manifests": [
    desc(OCI_M, size=525, platform={"architecture": "amd64", "os": "linux"}),
    desc(OCI_M, h=H64[::-1], size=525, platform={"architecture": "arm64", "os": "linux", "variant": "v8"})],
    "annotations": {"org.opencontainers.image.title": "x"}}
dlist = dict(index, mediaType=DOCKER_L)
artifact = {"schemaVersion": 2, "mediaType": OCI_M, "artifactType": "application/spdx+json",
            "config": desc("application/vnd.oci.empty.v1+json"), "layers": [desc("application/spdx+json", size=27)],
            "subject": desc(OCI_M, size=525), "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"}}
no_type_image = {k: v for k, v in image.items() if k != "mediaType"}
no_type_index = {k: v for k, v in index.items() if k != "mediaType"}
schema1 = {"schemaVersion": 1, "name": "a", "tag": "latest", "architecture": "amd64", "fsLayers": [], "history": []}
for m in [image, docker, index, dlist, artifact, no_type_image, no_type_index, schema1]:
    body = json.dumps(m, separators=(",", ":")).encode()
    put("manifest", b"\x00" + body)
    known = {OCI_M: 1, OCI_I: 2, DOCKER_M: 3, DOCKER_L: 4}.get(m.get("mediaType"))
    if known:
        put("manifest", bytes([known]) + body)
put("manifest", b"\x07application/vnd.oci.image.manifest.v1+json; charset=utf-8\n" + json.dumps(image).encode())
put("manifest", b"\x02" + json.dumps(image).encode())  # Content-Type and mediaType disagree
put("manifest", b"\x00{\"schemaVersion\":2,\"mediaType\":7}")
put("manifest", b"\x00{\"schemaVersion\":2.0,\"config\":{}}")
put("manifest", b"\x00[1,2,3]")
put("manifest", b"\x00{\"schemaVersion\":2,")

QUERIES = ["n=2&last=a%2Fb", "tag=x&tag=y", "q=foo+bar&n=10", "%zz", "%", "a=%E2%82%AC", "n=&last=",
           "artifactType=application%2Fvnd.example%2Bjson", "digest=sha256%3A" + H64, "&&=&", "a=%ff%fe",
           "mount=sha256:" + H64 + "&from=library%2Falpine", "x=%2", "caf%C3%A9=\u00e9"]
for q in QUERIES:
    put("query", q)

# Range: byte 0 picks the blob size (bits 0-2: 0, 1, 100, MAX, MAX-1, else 8
# bytes from the input) and the declared length (bits 3-4: none, 0, MAX, 8 bytes).
RANGES = ["bytes=0-9", "bytes=10-", "bytes=-10", "bytes=90-200", "bytes=5-1", "bytes=0-1,3-4",
          "items=0-1", "bytes=-0", " bytes = 0 - 9 ", "bytes=18446744073709551615-",
          "bytes=0-18446744073709551616", "0-9", "bytes 10-19/*", "bytes=5-5", "bytes 0-99/100",
          "18446744073709551615-18446744073709551615"]
for r in RANGES:
    for mode in (2, 3, 0, 2 | 8):
        put("range", bytes([mode]) + r.encode())
    put("range", bytes([5 | 24]) + struct.pack("<QQ", 1 << 40, 10) + r.encode())

# htpasswd files; hashes made with `htpasswd -nbB -C 4 USER hunter2` (and -m, -s).
ALICE = "alice:$2y$04$2TC5XQJ6j7TxyibdlzcGDen9alYSlumnvOik0oZ6eDy8UW34Wlaai"
BOB = "bob.smith@example.org:$2y$04$LgLoEvw0l7X7GXXO0T4szu/uKM3vntP10sPwGt9u68g7iTeLtiZim"
HTPASSWD = [ALICE + "\n", ALICE + "\n" + BOB + "\n", "# made by htpasswd -B\n\n" + ALICE + "\r\n  \n" + BOB,
            ALICE.replace("$2y$", "$2b$"), ALICE.replace("$2y$", "$2a$"), "carol:$apr1$P2uzimpD$xuZEn7bAH9lFub1e7.p7X1",
            "dave:{SHA}EfatjsUqKYSrqv18O1FlA3hcIHI=", "erin:plaintextpassword", "no colon here", "-frank" + ALICE[5:],
            "gr ace" + ALICE[5:], ALICE + "\n" + ALICE, "# only comments\n\n", "", ALICE[:-1], ALICE + "x",
            "  " + ALICE + "  ", "x" * 65 + ALICE[5:]]
for h in HTPASSWD:
    put("htpasswd", h)

# Authorization values.
import base64
b64 = lambda s: base64.b64encode(s.encode()).decode()
BASIC = ["Basic " + b64("alice:s3cret"), "basic " + b64("alice:s3cret"), "BASIC\t" + b64("a:"),
         "Basic " + b64("alice:s3cret").rstrip("="), "Basic " + b64(":nouser"), "Basic " + b64("nocolon"),
         "Bearer abc.def", "Basic", "Basic !!!!", "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
         "  Basic   " + b64("bob:p:w") + "  ", "Basic " + b64("caf\u00e9:\u00fc")]
for b in BASIC:
    put("basic_auth", b)

# Chunked bodies: byte 0 = k piece sizes, k sizes, one output-buffer size, then
# the stream (fuzz_targets/chunked.rs).
CHUNKED = [b"5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n",
           b"A;name=value;x=\"q\"\r\n0123456789\r\n1 ; ext\r\nZ\r\n000\r\nX-Trailer: a\r\nY: b\r\n\r\n",
           b"3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n", b"zz\r\nabc\r\n0\r\n\r\n", b"3\nabc\r\n0\r\n\r\n",
           b"3\r\nabcd\r\n0\r\n\r\n", b"10000000000000000\r\n", b"ffffffffffffffff\r\nabc", b"5\r\nhel",
           b"0\r\nX: y\r\n", b"3;a\x01b\r\nabc\r\n0\r\n\r\n", b"0" * 40 + b"1\r\na\r\n0\r\n\r\n",
           b"1\r\n\x00\r\n2\r\n\r\n\r\n0\r\n\r\n", b"400\r\n" + b"x" * 0x400 + b"\r\n0\r\n\r\n"]
for i, c in enumerate(CHUNKED):
    put("chunked", bytes([0, 0]) + c)
    put("chunked", bytes([3, 1, 7, 255, 3 + i]) + c)

# Request heads, some with bodies (fuzz_targets/http_head.rs).
HEADS = [b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1:5000\r\nUser-Agent: docker/27.0\r\n\r\n",
         b"HEAD /v2/library/alpine/manifests/latest HTTP/1.1\r\nHost: r\r\nAccept: application/vnd.oci.image.index.v1+json, */*\r\n\r\n",
         b"PUT /v2/a/manifests/v1 HTTP/1.1\r\nHost: r\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 2\r\n\r\n{}",
         b"PATCH /v2/a/blobs/uploads/0123456789abcdef0123456789abcdef HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked\r\nContent-Range: 0-4\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
         b"POST /v2/a/blobs/uploads/?digest=sha256%3A" + H64.encode() + b" HTTP/1.1\r\nHost: r\r\nContent-Length: 0\r\nExpect: 100-continue\r\n\r\n",
         b"GET /v2/_catalog?n=10&last=a%2Fb HTTP/1.0\r\n\r\n",
         b"GET /v2/ HTTP/1.1\r\nHost: r\r\nConnection: close\r\nAuthorization: Basic YWxpY2U6czNjcmV0\r\n\r\n",
         b"POST /x HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
         b"POST /x HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
         b"POST /x HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello",
         b"POST /x HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
         b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
         b"POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
         b"GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", b"GET / HTTP/1.1\r\nNoColon\r\n\r\n",
         b"GET / HTTP/1.1\nHost: r\n\n", b"GET http://example.invalid/v2/ HTTP/1.1\r\n\r\n",
         b"OPTIONS * HTTP/1.1\r\n\r\n", b"GET /v2/ HTTP/2.0\r\n\r\n", b"GET /v2/\r\n\r\n",
         b"GET /v2/ HTTP/1.1\r\nHost: r\r\n\r\nGET /v2/ HTTP/1.1\r\nHost: r\r\n\r\n",
         b"GET /%2e%2e/etc/passwd HTTP/1.1\r\n\r\n", b"G\x00T / HTTP/1.1\r\n\r\n",
         b"GET / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n",
         b"GET / HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 200 + b"\r\n\r\n"]
for h in HEADS:
    put("http_head", h)
print("seeds written under", ROOT)
