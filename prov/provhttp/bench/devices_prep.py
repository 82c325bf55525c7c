#!/usr/bin/env python3
"""devices_prep.py — for http_devices_vs_nginx.sh: enrol N Polycom devices
through hotdeskd's provisioning port, take each one's credentials from its
<MAC>-hotdesk.cfg (handed out once; kept beside WWW in creds/), then, authenticated by digest, save
that file's bytes under WWW (what nginx serves) and write DEVICES: one line
per device "path ha1 nonce" for wrk's digest.lua (a fresh nonce each).

Usage: devices_prep.py BASE_URL N WWW DEVICES [--nonces-only]
"""
import hashlib, http.client, os, re, sys, urllib.parse

UA = "FileTransport PolycomVVX-VVX_411-UA/6.4.3.5018"
base, n, www, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
nonces_only = "--nonces-only" in sys.argv
u = urllib.parse.urlsplit(base)
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)


def get(path, headers=None):
    h = {"User-Agent": UA}
    h.update(headers or {})
    conn.request("GET", path, headers=h)
    r = conn.getresponse()
    return r.status, r.getheaders(), r.read()


def challenge(path):
    st, hdrs, _ = get(path)
    if st != 401:
        sys.exit(f"{path}: want 401, got {st}")
    for k, v in hdrs:
        if k.lower() == "www-authenticate" and "algorithm=MD5" in v:
            return re.search(r'realm="([^"]*)"', v).group(1), re.search(r'nonce="([^"]*)"', v).group(1)
    sys.exit(f"{path}: no MD5 challenge")


def md5(s):
    return hashlib.md5(s.encode()).hexdigest()


lines = []
os.makedirs(os.path.join(os.path.dirname(os.path.abspath(www)), "creds"), exist_ok=True)
for i in range(n):
    mac = f"0004f2{i + 1:06x}"
    path = f"/{mac}-hotdesk.cfg"
    cred_file = os.path.join(os.path.dirname(os.path.abspath(www)), "creds", f"{mac}.cred")
    if not nonces_only:
        st, _, _ = get(f"/{mac}.cfg")
        if st != 200:
            sys.exit(f"enrol {mac}: {st}")
        st, _, body = get(path)
        if st != 200:
            sys.exit(f"{path}: {st}")
        user = re.search(rb'device\.prov\.user="([^"]*)"', body).group(1).decode()
        pw = re.search(rb'device\.prov\.password="([^"]*)"', body).group(1).decode()
        with open(cred_file, "w") as f:
            f.write(f"{user} {pw}\n")
    user, pw = open(cred_file).read().split()
    realm, nonce = challenge(path)
    ha1 = md5(f"{user}:{realm}:{pw}")
    if not nonces_only:
        # The bytes a phone gets, authenticated, for nginx to serve.
        resp = md5(f"{ha1}:{nonce}:00000001:prep:auth:{md5('GET:' + path)}")
        auth = (f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{path}", '
                f'algorithm=MD5, response="{resp}", qop=auth, nc=00000001, cnonce="prep"')
        st, _, body = get(path, {"Authorization": auth})
        if st != 200:
            sys.exit(f"{path} with digest: {st}")
        with open(os.path.join(www, path.lstrip("/")), "wb") as f:
            f.write(body)
    lines.append(f"{path} {user} {realm} {ha1} {nonce}\n")
with open(out, "w") as f:
    f.writelines(lines)
