#!/usr/bin/env python3
"""Writes the botcalld container image as an OCI archive, without a daemon.

    oci_image.py build --binary PATH --arch amd64|arm64 --out FILE.tar [--tag TAG]
    oci_image.py verify FILE.tar        # digests, sizes, media types, diff_ids
    oci_image.py unpack FILE.tar DIR    # the root filesystem; prints the config

The image is the Dockerfile's final stage: its USER, ENV, WORKDIR,
ENTRYPOINT, CMD, EXPOSE, VOLUME, HEALTHCHECK and LABEL lines become the image
config, and its root filesystem (what the build stage puts in /rootfs) is
made here: /botcalld, /etc/passwd, /etc/group, /etc/nsswitch.conf, the CA
bundle the Web Push client trusts (/etc/ssl/certs/ca-certificates.crt, the
build machine's: `--ca-bundle`) and the state directory owned by the image's
user. One gzip layer. Everything is
deterministic (file times and `created` are SOURCE_DATE_EPOCH, default 0;
owners are numeric, no user names), so the same binary gives the same
digests. Python standard library only.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import re
import shlex
import sys
import tarfile
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
DOCKERFILE = os.path.join(HERE, "..", "Dockerfile")

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_INDEX = "application/vnd.oci.image.index.v1+json"

ARCHES = {"amd64": ("x86_64", None), "arm64": ("aarch64", "v8")}


def fail(msg):
    print(f"oci_image.py: {msg}", file=sys.stderr)
    sys.exit(1)


def duration_ns(text):
    m = re.fullmatch(r"(\d+)(ms|s|m|h)", text)
    if not m:
        fail(f"Dockerfile: bad duration {text!r}")
    mult = {"ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}[m.group(2)]
    return int(m.group(1)) * mult


def exec_form(rest, what):
    try:
        v = json.loads(rest)
    except json.JSONDecodeError:
        fail(f"Dockerfile: {what} must be in exec form (a JSON array): {rest}")
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        fail(f"Dockerfile: {what} must be a JSON array of strings")
    return v


def final_stage(path=DOCKERFILE):
    """The image config the Dockerfile's final stage describes."""
    lines, cur = [], ""
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not cur and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if line.endswith("\\"):
                cur += line[:-1] + " "
                continue
            lines.append(cur + line)
            cur = ""
    starts = [i for i, l in enumerate(lines) if l.split()[0].upper() == "FROM"]
    if not starts:
        fail("Dockerfile: no FROM")
    stage = lines[starts[-1]:]
    if stage[0].split()[1:] != ["scratch"]:
        fail("Dockerfile: the final stage must be FROM scratch")
    cfg = {"Env": [], "Labels": {}, "ExposedPorts": {}, "Volumes": {}}
    for line in stage[1:]:
        word, _, rest = line.strip().partition(" ")
        word, rest = word.upper(), rest.strip()
        if word == "COPY":
            continue  # the root filesystem: made by rootfs() below
        if word == "USER":
            cfg["User"] = rest
        elif word == "WORKDIR":
            cfg["WorkingDir"] = rest
        elif word == "ENV":
            for kv in shlex.split(rest):
                k, eq, v = kv.partition("=")
                if not eq:
                    fail(f"Dockerfile: ENV needs KEY=VALUE: {kv}")
                cfg["Env"].append(f"{k}={v}")
        elif word == "LABEL":
            for kv in shlex.split(rest):
                k, _, v = kv.partition("=")
                cfg["Labels"][k] = v
        elif word == "EXPOSE":
            for p in rest.split():
                cfg["ExposedPorts"][p if "/" in p else p + "/tcp"] = {}
        elif word == "VOLUME":
            for v in exec_form(rest, "VOLUME"):
                cfg["Volumes"][v] = {}
        elif word == "ENTRYPOINT":
            cfg["Entrypoint"] = exec_form(rest, "ENTRYPOINT")
        elif word == "CMD":
            cmd = exec_form(rest, "CMD")
            if cmd:
                cfg["Cmd"] = cmd
        elif word == "HEALTHCHECK":
            hc = {}
            words = rest.split(" ")
            while words and words[0].startswith("--"):
                k, _, v = words.pop(0)[2:].partition("=")
                key = {"interval": "Interval", "timeout": "Timeout",
                       "start-period": "StartPeriod", "retries": "Retries"}.get(k)
                if key is None:
                    fail(f"Dockerfile: HEALTHCHECK --{k} not understood")
                hc[key] = int(v) if key == "Retries" else duration_ns(v)
            if not words or words[0] != "CMD":
                fail("Dockerfile: HEALTHCHECK must be CMD [...]")
            hc["Test"] = ["CMD"] + exec_form(" ".join(words[1:]), "HEALTHCHECK CMD")
            cfg["Healthcheck"] = {k: hc[k] for k in
                                  ("Test", "Interval", "Timeout", "StartPeriod", "Retries") if k in hc}
        else:
            fail(f"Dockerfile: {word} in the final stage is not understood by this script")
    if "PATH=" not in " ".join(cfg["Env"]):
        # What Docker sets in every image without a PATH.
        cfg["Env"].insert(0, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    for k in ("User", "WorkingDir", "Entrypoint"):
        if k not in cfg:
            fail(f"Dockerfile: the final stage has no {k}")
    return cfg


def user_ids(user):
    uid, _, gid = user.partition(":")
    if not uid.isdigit() or (gid and not gid.isdigit()):
        fail(f"USER {user}: use numeric ids (an empty image has no user database to ask)")
    return int(uid), int(gid or uid)


def rootfs(binary, cfg, mtime, ca_bundle):
    """The layer: an uncompressed tar, entries in a fixed order."""
    uid, gid = user_ids(cfg["User"])
    state = cfg["WorkingDir"].strip("/")
    files = [
        ("etc/", None, 0o755, 0, 0),
        ("etc/group", b"root:x:0:\nbotcall:x:%d:\n" % gid, 0o644, 0, 0),
        ("etc/nsswitch.conf", b"hosts: files dns\n", 0o644, 0, 0),
        ("etc/passwd",
         b"root:x:0:0::/:/botcalld\nbotcall:x:%d:%d::/%s:/botcalld\n" % (uid, gid, state.encode()),
         0o644, 0, 0),
        ("etc/ssl/", None, 0o755, 0, 0),
        ("etc/ssl/certs/", None, 0o755, 0, 0),
    ]
    try:
        with open(ca_bundle, "rb") as f:
            files.append(("etc/ssl/certs/ca-certificates.crt", f.read(), 0o644, 0, 0))
    except OSError as e:
        fail(f"--ca-bundle {ca_bundle}: {e} (apt-get install ca-certificates)")
    parts = state.split("/")
    for i in range(1, len(parts)):
        files.append(("/".join(parts[:i]) + "/", None, 0o755, 0, 0))
    files.append((state + "/", None, 0o700, uid, gid))
    with open(binary, "rb") as f:
        files.append((cfg["Entrypoint"][0].lstrip("/"), f.read(), 0o755, 0, 0))
    files.sort(key=lambda e: e[0])
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, mode, owner, group in files:
            ti = tarfile.TarInfo(name.rstrip("/"))
            ti.mode, ti.uid, ti.gid, ti.mtime = mode, owner, group, mtime
            ti.uname = ti.gname = ""
            if data is None:
                ti.type = tarfile.DIRTYPE
                tar.addfile(ti)
            else:
                ti.size = len(data)
                tar.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def build(args):
    if args.arch not in ARCHES:
        fail(f"--arch must be one of {', '.join(ARCHES)}")
    cfg = final_stage(args.dockerfile)
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    created = datetime.fromtimestamp(mtime, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    with open(args.binary, "rb") as f:
        head = f.read(20)
    machine = {62: "amd64", 183: "arm64"}.get(int.from_bytes(head[18:20], "little"))
    if head[:4] != b"\x7fELF" or machine != args.arch:
        fail(f"{args.binary} is not an {args.arch} ELF program")

    layer = rootfs(args.binary, cfg, mtime, args.ca_bundle)
    gz = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=gz, mtime=0, compresslevel=9) as z:
        z.write(layer)
    layer_gz = gz.getvalue()

    _, variant = ARCHES[args.arch]
    config = {
        "created": created,
        "architecture": args.arch,
        "os": "linux",
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": [digest(layer)]},
        "history": [{"created": created, "created_by": "container/build-image (Dockerfile final stage)"}],
    }
    if variant:
        config["variant"] = variant
    config_b = canonical(config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": {"mediaType": MT_CONFIG, "digest": digest(config_b), "size": len(config_b)},
        "layers": [{"mediaType": MT_LAYER, "digest": digest(layer_gz), "size": len(layer_gz)}],
        "annotations": {"org.opencontainers.image.created": created},
    }
    manifest_b = canonical(manifest)
    platform = {"architecture": args.arch, "os": "linux"}
    if variant:
        platform["variant"] = variant
    index = {
        "schemaVersion": 2,
        "mediaType": MT_INDEX,
        "manifests": [{
            "mediaType": MT_MANIFEST, "digest": digest(manifest_b), "size": len(manifest_b),
            "platform": platform,
            "annotations": {"org.opencontainers.image.ref.name": args.tag},
        }],
    }
    entries = [
        ("oci-layout", canonical({"imageLayoutVersion": "1.0.0"})),
        ("index.json", canonical(index)),
    ] + sorted((f"blobs/sha256/{digest(b)[7:]}", b) for b in (config_b, manifest_b, layer_gz))
    tmp = args.out + ".part"
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("blobs/", "blobs/sha256/"):
            ti = tarfile.TarInfo(d.rstrip("/"))
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, mtime
            tar.addfile(ti)
        for name, data in entries:
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), 0o644, mtime
            tar.addfile(ti, io.BytesIO(data))
    os.replace(tmp, args.out)
    print(json.dumps({
        "archive": args.out, "arch": args.arch, "tag": args.tag,
        "manifest": digest(manifest_b), "config": digest(config_b),
        "layer": digest(layer_gz), "layer_bytes": len(layer_gz), "layer_tar_bytes": len(layer),
        "archive_bytes": os.path.getsize(args.out),
    }))


def read_archive(path):
    blobs, meta = {}, {}
    with tarfile.open(path) as tar:
        for m in tar.getmembers():
            if not m.isfile():
                continue
            f = tar.extractfile(m)
            data = f.read() if f else b""
            if m.name.startswith("blobs/sha256/"):
                blobs["sha256:" + m.name.rsplit("/", 1)[1]] = data
            else:
                meta[m.name] = data
    return meta, blobs


def check_blob(blobs, desc, what):
    d = desc.get("digest", "")
    if d not in blobs:
        fail(f"{what} {d}: missing from the archive")
    data = blobs[d]
    if digest(data) != d:
        fail(f"{what} {d}: content hashes to {digest(data)}")
    if desc.get("size") != len(data):
        fail(f"{what} {d}: size {desc.get('size')} in its descriptor, {len(data)} in the archive")
    return data


def load(path):
    """Verifies every digest, size and media type; returns (config, [layer tar])."""
    meta, blobs = read_archive(path)
    if json.loads(meta.get("oci-layout", b"{}")).get("imageLayoutVersion") != "1.0.0":
        fail("oci-layout: missing or not 1.0.0")
    index = json.loads(meta["index.json"])
    if len(index.get("manifests", [])) != 1:
        fail("index.json: expected one manifest")
    mdesc = index["manifests"][0]
    if mdesc.get("mediaType") != MT_MANIFEST:
        fail(f"index.json: manifest media type {mdesc.get('mediaType')}")
    manifest = json.loads(check_blob(blobs, mdesc, "manifest"))
    if manifest.get("config", {}).get("mediaType") != MT_CONFIG:
        fail("manifest: config media type")
    config = json.loads(check_blob(blobs, manifest["config"], "config"))
    diff_ids = config.get("rootfs", {}).get("diff_ids", [])
    if len(diff_ids) != len(manifest.get("layers", [])):
        fail("config: diff_ids and manifest layers differ in number")
    layers = []
    for ldesc, diff_id in zip(manifest["layers"], diff_ids):
        if ldesc.get("mediaType") != MT_LAYER:
            fail(f"layer media type {ldesc.get('mediaType')}")
        tar = gzip.decompress(check_blob(blobs, ldesc, "layer"))
        if digest(tar) != diff_id:
            fail(f"layer {ldesc['digest']}: uncompressed digest {digest(tar)}, config says {diff_id}")
        layers.append(tar)
    if mdesc.get("platform", {}).get("architecture") != config.get("architecture"):
        fail("index platform and config architecture differ")
    return config, layers


def verify(args):
    config, layers = load(args.archive)
    print(json.dumps({"ok": True, "architecture": config["architecture"],
                      "layers": len(layers), "config": config["config"]}))


def unpack(args):
    config, layers = load(args.archive)
    os.makedirs(args.dir, exist_ok=True)
    for tar in layers:
        with tarfile.open(fileobj=io.BytesIO(tar)) as t:
            for m in t.getmembers():
                if m.name.startswith("/") or ".." in m.name.split("/") or not (m.isfile() or m.isdir()):
                    fail(f"layer entry {m.name!r}: refused")
            # Keep the numeric owners and modes: the test runs as the image would.
            if hasattr(tarfile, "fully_trusted_filter"):
                t.extractall(args.dir, numeric_owner=True, filter="fully_trusted")
            else:
                t.extractall(args.dir, numeric_owner=True)
    print(json.dumps(config["config"]))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--binary", required=True)
    b.add_argument("--arch", required=True)
    b.add_argument("--out", required=True)
    b.add_argument("--tag", default="botcalld:latest")
    b.add_argument("--dockerfile", default=DOCKERFILE)
    # The push client's trust anchors (push_ca_file's default path).
    b.add_argument("--ca-bundle", default="/etc/ssl/certs/ca-certificates.crt")
    v = sub.add_parser("verify")
    v.add_argument("archive")
    u = sub.add_parser("unpack")
    u.add_argument("archive")
    u.add_argument("dir")
    args = p.parse_args()
    {"build": build, "verify": verify, "unpack": unpack}[args.cmd](args)


if __name__ == "__main__":
    main()
