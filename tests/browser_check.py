#!/usr/bin/env python3
"""Loads an oodseg HTML report in headless Chromium, from disk with JavaScript on, and checks it
through the DevTools protocol (--remote-debugging-pipe): every <img> decoded (naturalWidth > 0),
the per-image table has ROWS rows, clicking each sortable header sorts its column both ways and
reorders the rows, and nothing was logged as an error (console, exceptions, failed loads).

  browser_check.py PAGE ROWS [SCREENSHOT.png]
Exit status: 0 ok, 1 a check failed, 77 Chromium is not installed (the caller skips, saying so).
"""
import base64, json, os, shutil, subprocess, sys, tempfile, time

CHECK_JS = r"""
(async () => {
  const imgs = Array.from(document.images);
  imgs.forEach(i => { i.loading = 'eager'; });           // lazy images below the fold load too
  await Promise.all(imgs.map(i => i.decode().catch(() => null)));
  const bad = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'));
  const t = document.getElementById('per-image');
  const res = {images: imgs.length, bad: bad, rows: t ? t.tBodies[0].rows.length : -1, sorts: [], reordered: 0};
  if (!t) return res;
  const names = () => Array.from(t.tBodies[0].rows).map(r => r.cells[1].textContent);
  const sorted = (v, asc) => { const f = v.filter(x => !isNaN(x));
    for (let k = 1; k < f.length; k++) if (asc ? f[k] < f[k-1] : f[k] > f[k-1]) return false;
    return v.slice(f.length).every(isNaN); };           // NaN (undefined metric) last
  for (const th of t.querySelectorAll('th[data-k]')) {
    const i = th.cellIndex, before = names().join('|');
    const col = () => Array.from(t.tBodies[0].rows).map(r => parseFloat(r.cells[i].dataset.v));
    th.click(); const a = col(), after = names().join('|');
    th.click(); const d = col();
    if (after !== before || names().join('|') !== before) res.reordered++;
    res.sorts.push({header: th.textContent, asc: sorted(a, true), desc: sorted(d, false)});
  }
  res.svgs = document.querySelectorAll('svg').length;
  return res;
})()
"""


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


class Browser:
    def __init__(self, exe, profile):
        to_r, self.to_w = os.pipe()       # our commands: the browser reads fd 3
        self.from_r, from_w = os.pipe()   # its answers: the browser writes fd 4
        args = [exe, "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
                "--no-first-run", "--remote-debugging-pipe", "--user-data-dir=" + profile, "about:blank"]
        cmd = 'exec "$@" 3<&%d 4>&%d' % (to_r, from_w)
        self.proc = subprocess.Popen(["/bin/sh", "-c", cmd, "sh"] + args, pass_fds=(to_r, from_w),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_r)
        os.close(from_w)
        self.buf, self.next_id, self.events = b"", 0, []

    def _read(self, deadline):
        while b"\0" not in self.buf:
            if time.time() > deadline:
                raise TimeoutError("no answer from Chromium")
            chunk = os.read(self.from_r, 1 << 20)
            if not chunk:
                raise EOFError("Chromium closed the pipe")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, session=None, timeout=30):
        self.next_id += 1
        m = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            m["sessionId"] = session
        os.write(self.to_w, json.dumps(m).encode() + b"\0")
        deadline = time.time() + timeout
        while True:
            r = self._read(deadline)
            if r.get("id") == self.next_id:
                if "error" in r:
                    raise RuntimeError("%s: %s" % (method, r["error"]))
                return r["result"]
            self.events.append(r)

    def wait_event(self, name, timeout=30):
        deadline = time.time() + timeout
        for k, ev in enumerate(self.events):
            if ev.get("method") == name:
                return self.events.pop(k)
        while True:
            r = self._read(deadline)
            self.events.append(r)
            if r.get("method") == name:
                return r

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def errors_logged(events):
    out = []
    for ev in events:
        m, p = ev.get("method"), ev.get("params", {})
        if m == "Runtime.exceptionThrown":
            out.append("exception: " + json.dumps(p.get("exceptionDetails", {}))[:300])
        elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append("console.%s: %s" % (p["type"], json.dumps(p.get("args"))[:300]))
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            e = p["entry"]
            out.append("log: %s %s" % (e.get("text"), e.get("url", "")))
    return out


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    page, rows = os.path.abspath(sys.argv[1]), int(sys.argv[2])
    shot = sys.argv[3] if len(sys.argv) > 3 else None
    exe = find_chromium()
    if not exe:
        print("chromium is not installed (tools/install-deps.sh installs it)")
        return 77
    profile = tempfile.mkdtemp(prefix="oodseg-chromium-")
    b = Browser(exe, profile)
    fails = []
    try:
        targets = b.call("Target.getTargets")["targetInfos"]
        pages = [t for t in targets if t["type"] == "page"]
        tid = pages[0]["targetId"] if pages else b.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        s = b.call("Target.attachToTarget", {"targetId": tid, "flatten": True})["sessionId"]
        for dom in ("Runtime.enable", "Log.enable", "Page.enable"):
            b.call(dom, session=s)
        b.call("Emulation.setDeviceMetricsOverride", {"width": 1400, "height": 1000, "deviceScaleFactor": 1,
                                                      "mobile": False}, session=s)
        b.call("Page.navigate", {"url": "file://" + page}, session=s)
        b.wait_event("Page.loadEventFired")
        r = b.call("Runtime.evaluate", {"expression": CHECK_JS, "awaitPromise": True, "returnByValue": True},
                   session=s, timeout=60)
        if "exceptionDetails" in r:
            fails.append("the check script failed: %s" % json.dumps(r["exceptionDetails"])[:500])
        res = r.get("result", {}).get("value", {}) or {}
        print("page: %d images, %d rows, %d sortable columns, %d svg" % (res.get("images", -1), res.get("rows", -1),
                                                                       len(res.get("sorts", [])), res.get("svgs", -1)))
        if res.get("bad"):
            fails.append("images not decoded: %s" % res["bad"][:5])
        if res.get("rows") != rows:
            fails.append("per-image table has %s rows, expected %d" % (res.get("rows"), rows))
        if not res.get("sorts"):
            fails.append("no sortable column")
        for so in res.get("sorts", []):
            if not (so["asc"] and so["desc"]):
                fails.append("column '%s' does not sort (ascending %s, descending %s)" % (so["header"], so["asc"], so["desc"]))
        if rows > 1 and not res.get("reordered"):
            fails.append("clicking the headers never reordered the rows")
        if res.get("svgs", 0) < 2:
            fails.append("the PR and ROC curves are not inline")
        if shot:
            m = b.call("Page.getLayoutMetrics", session=s)["cssContentSize"]
            b.call("Emulation.setDeviceMetricsOverride", {"width": 1400, "height": int(min(m["height"], 12000)),
                                                          "deviceScaleFactor": 1, "mobile": False}, session=s)
            png = b.call("Page.captureScreenshot", {"format": "png"}, session=s)["data"]
            with open(shot, "wb") as f:
                f.write(base64.b64decode(png))
        time.sleep(0.2)
        b.call("Runtime.evaluate", {"expression": "1"}, session=s)   # collect late events
        fails += errors_logged(b.events)
    except Exception as ex:  # the browser misbehaving is a failure, never a skip
        fails.append("%s: %s" % (type(ex).__name__, ex))
    finally:
        b.close()
        shutil.rmtree(profile, ignore_errors=True)
    for f in fails:
        print("FAIL:", f)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
