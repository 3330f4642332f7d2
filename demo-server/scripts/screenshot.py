#!/usr/bin/env python3
"""Looks at the demo page in a real browser, once: starts demo-server, drives headless
Chromium through the DevTools protocol (log in through the form, press "Count" twice),
checks what the page says and saves screenshots of the login form and the logged-in page.

    python3 demo-server/scripts/screenshot.py [OUT_DIR]     (default target/screenshots)

Needs chromium (Debian: apt-get install chromium) and only Python's standard library;
builds demo-server first. Not part of CI: a person looks at the PNGs.
"""

import base64, json, os, shutil, socket, struct, subprocess, sys, tempfile, time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


class DevTools:
    """A minimal client of Chromium's DevTools websocket (RFC 6455, client side)."""

    def __init__(self, ws_url):
        rest = ws_url.split("://", 1)[1]
        hostport, path = rest.split("/", 1)
        host, port = hostport.split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
             f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
             "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise RuntimeError(f"websocket handshake refused: {head!r}")
        self.next_id = 0

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise RuntimeError("devtools connection closed")
            buf += chunk
        return buf

    def _recv_message(self):
        data = b""
        while True:
            b0, b1 = self._recv_exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._recv_exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._recv_exact(8))[0]
            payload = self._recv_exact(n)
            if b0 & 0x0F == 0x8:
                raise RuntimeError("devtools closed the websocket")
            data += payload
            if b0 & 0x80:
                return json.loads(data)

    def call(self, method, **params):
        self.next_id += 1
        msg = json.dumps({"id": self.next_id, "method": method, "params": params}).encode()
        mask = os.urandom(4)
        n = len(msg)
        head = bytes([0x81])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(msg)))
        while True:
            reply = self._recv_message()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def eval(self, js):
        return self.call("Runtime.evaluate", expression=js, returnByValue=True)["result"].get("value")

    def wait_for(self, js, what, seconds=10):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if self.eval(js):
                return
            time.sleep(0.1)
        raise RuntimeError(f"the page never showed {what}: {self.eval('document.body.innerText')!r}")

    def screenshot(self, path):
        png = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        with open(path, "wb") as f:
            f.write(png)
        print(f"saved {path} ({len(png)} bytes)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    out = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "screenshots"))
    os.makedirs(out, exist_ok=True)
    browser = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")
                    if shutil.which(b)), None)
    if not browser:
        sys.exit("no chromium on PATH: apt-get install chromium")
    subprocess.run(["cargo", "build", "--release", "-p", "demo-server", "--bin", "demo-server"],
                   cwd=ROOT, check=True)
    work = tempfile.mkdtemp(prefix="demo-screenshot-")
    procs = []
    try:
        server = subprocess.Popen(
            [os.path.join(ROOT, "target", "release", "demo-server"), "--listen", "127.0.0.1:0",
             "--workers", "2", "--store", f"fastmmap={work}/sessions"],
            stdout=subprocess.PIPE, stderr=open(os.path.join(work, "log"), "w"), text=True)
        procs.append(server)
        url = server.stdout.readline().strip().removeprefix("listening on ")
        if not url.startswith("http://"):
            sys.exit(f"demo-server did not start: {open(os.path.join(work, 'log')).read()}")
        port = free_port()
        chrome = subprocess.Popen(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--window-size=900,520", f"--remote-debugging-port={port}",
             f"--user-data-dir={work}/profile", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(chrome)
        deadline = time.time() + 30
        while True:
            try:
                pages = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
                page = next(p for p in pages if p.get("type") == "page")
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        dt = DevTools(page["webSocketDebuggerUrl"])
        dt.call("Page.enable")
        dt.call("Page.navigate", url=url + "/")
        dt.wait_for("!!document.querySelector('input[name=user]')", "the login form")
        dt.screenshot(os.path.join(out, "login-form.png"))
        dt.eval("document.querySelector('input[name=user]').value = 'ada';"
                "document.querySelector('form').submit(); true")
        dt.wait_for("document.body.innerText.includes('Logged in as ada')", "the login")
        for n in (1, 2):
            dt.eval("document.querySelector('form[action=\"/incr\"]').submit(); true")
            dt.wait_for(f"document.body.innerText.includes('Counter: {n}.')", f"counter {n}")
        text = dt.eval("document.body.innerText")
        if "Served by worker" not in text:
            sys.exit(f"unexpected page: {text!r}")
        dt.screenshot(os.path.join(out, "logged-in.png"))
        print("the page says:", " | ".join(l for l in text.splitlines() if l.strip()))
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
