#!/usr/bin/env python3
"""soak/poll-status.py: polls the status handler while `make soak` loads httpd.

Usage: poll-status.py --url URL --stop FILE --out FILE [--every SECONDS]
                      [--plain]
       poll-status.py --summary URL

Every --every seconds (default 1) it asks URL for the three formats (no
query: HTML, ?json, ?prometheus) and checks that each is answered 200 with
its content type and a body that parses:

  html        an HTML document (html.parser) with the tables rules,
              clients and decisions, and no <script>;
  json        the schema of docs/status.md: every key, times as
              YYYY-MM-DDTHH:MM:SSZ, hex lowercase;
  prometheus  the text exposition format 0.0.4: every sample line
              `name{label="value",...} number`, every family with its
              # HELP and # TYPE before its first sample, and the six
              families of docs/status.md.

It also checks, from one JSON answer to the next, that no rule's
admissions or denials go down: the counts are shared by the children and
kept across graceful restarts for unchanged rules, so within one httpd
run they only grow.

--plain (the baseline run, httpd without the module): only the status
code is checked, of a static file, so that both runs carry the same
polling load.

It stops when FILE exists (after one poll at least), then writes key=value lines to --out: polls,
answers_ok, failures, and the first few failures in words, and the last
JSON answer to OUT.json. Exit status 0 whatever it found (soak.sh reads
the summary); 2 on bad usage.

--summary URL: one JSON answer (checked as above) as key=value lines for
soak.sh to compare with what its client counted:

  seen_cache=<provider or "off">
  decision_<outcome>_<reason>=<count, summed over the scopes>
  rule_<n>=<admissions> <denials> <since is started: 1|0> <since is restarted: 1|0>
      (n from 1, in configuration order)
  client_<the CN of its subject>=<requests>
  clients=<entries>
"""

import argparse
import html.parser
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
FAMILIES = {
    "mtls_authz_decisions_total": "counter",
    "mtls_authz_rule_admissions_total": "counter",
    "mtls_authz_rule_denials_total": "counter",
    "mtls_authz_rule_last_admission_timestamp_seconds": "gauge",
    "mtls_authz_client_cert_not_after_timestamp_seconds": "gauge",
    "mtls_authz_start_time_seconds": "gauge",
}
# One sample line of the text format: a name, optional labels whose values
# escape only \\, \" and \n, a value (and an optional timestamp).
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(
    r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:%s(?:,%s)*)?,?\})? "
    r"([-+]?(?:[0-9.]+(?:[eE][-+]?[0-9]+)?|NaN|Inf))(?: -?[0-9]+)?$" % (LABEL, LABEL)
)


class Bad(Exception):
    pass


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


class Tables(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids = set()
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.ids.update(v for k, v in attrs if k == "id")
        if tag == "script":
            self.scripts += 1


def check_html(ctype, body):
    if not ctype.startswith("text/html"):
        raise Bad("html: Content-Type %r" % ctype)
    p = Tables()
    p.feed(body.decode("utf-8"))
    p.close()
    missing = {"rules", "clients", "decisions"} - p.ids
    if missing:
        raise Bad("html: no table %s" % ", ".join(sorted(missing)))
    if p.scripts:
        raise Bad("html: has <script>")


def need(obj, key, kind, where):
    if key not in obj:
        raise Bad("json: %s has no %r" % (where, key))
    v = obj[key]
    ok = {
        "time": lambda v: isinstance(v, str) and TIME.match(v),
        "time?": lambda v: v is None or (isinstance(v, str) and TIME.match(v)),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "str": lambda v: isinstance(v, str),
        "str?": lambda v: v is None or isinstance(v, str),
        "hex": lambda v: isinstance(v, str) and HEX64.match(v),
        "list": lambda v: isinstance(v, list),
    }[kind](v)
    if not ok:
        raise Bad("json: %s: %r is %r, not %s" % (where, key, v, kind))
    return v


def check_json(ctype, body):
    if not ctype.startswith("application/json"):
        raise Bad("json: Content-Type %r" % ctype)
    doc = json.loads(body.decode("utf-8"))
    if not isinstance(doc, dict):
        raise Bad("json: not an object")
    need(doc, "version", "str", "top")
    for k in ("now", "started", "restarted"):
        need(doc, k, "time", "top")
    need(doc, "seen_cache", "str?", "top")
    for i, r in enumerate(need(doc, "rules", "list", "top")):
        w = "rules[%d]" % i
        need(r, "rule", "str", w)
        need(r, "scope", "str", w)
        if need(r, "kind", "str", w) not in ("allow", "deny"):
            raise Bad("json: %s: kind %r" % (w, r["kind"]))
        need(r, "admissions", "int", w)
        need(r, "denials", "int", w)
        need(r, "last_admission", "time?", w)
        need(r, "since", "time", w)
    last = ""
    for i, c in enumerate(need(doc, "clients", "list", "top")):
        w = "clients[%d]" % i
        for k in ("subject", "issuer", "rule"):
            need(c, k, "str", w)
        need(c, "issuer_sha256", "hex", w)
        need(c, "cert_sha256", "hex", w)
        na = need(c, "not_after", "time", w)
        need(c, "days_left", "int", w)
        need(c, "last_seen", "time", w)
        need(c, "requests", "int", w)
        if na < last:
            raise Bad("json: clients not sorted by not_after")
        last = na
    for i, d in enumerate(need(doc, "decisions", "list", "top")):
        w = "decisions[%d]" % i
        for k in ("scope", "outcome", "reason"):
            need(d, k, "str", w)
        if need(d, "count", "int", w) <= 0:
            raise Bad("json: %s: count %r (only non-zero ones are listed)" % (w, d["count"]))
    return doc


def check_prometheus(ctype, body):
    if not ctype.startswith("text/plain") or "version=0.0.4" not in ctype:
        raise Bad("prometheus: Content-Type %r" % ctype)
    helped, typed, seen = set(), {}, set()
    for n, line in enumerate(body.decode("utf-8").split("\n"), 1):
        if line == "":
            continue
        m = re.match(r"^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$", line)
        if m:
            (helped.add(m[2]) if m[1] == "HELP" else typed.__setitem__(m[2], m[3]))
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            raise Bad("prometheus: line %d does not parse: %r" % (n, line[:200]))
        name = m[1]
        if name not in helped or name not in typed:
            raise Bad("prometheus: line %d: %s has no # HELP and # TYPE before it" % (n, name))
        seen.add(name)
    for name, kind in FAMILIES.items():
        if typed.get(name) != kind:
            raise Bad("prometheus: # TYPE %s is %r, not %s" % (name, typed.get(name), kind))
    if "mtls_authz_start_time_seconds" not in seen:
        raise Bad("prometheus: no mtls_authz_start_time_seconds sample")


def summary(url):
    status, ctype, body = fetch(url + "?json")
    if status != 200:
        print("error=status %d" % status)
        return 1
    try:
        doc = check_json(ctype, body)
    except (Bad, ValueError) as e:
        print("error=%s" % e)
        return 1
    print("seen_cache=%s" % (doc["seen_cache"] or "off"))
    sums = {}
    for d in doc["decisions"]:
        k = "decision_%s_%s" % (d["outcome"], d["reason"])
        sums[k] = sums.get(k, 0) + d["count"]
    for k in sorted(sums):
        print("%s=%d" % (k, sums[k]))
    for i, r in enumerate(doc["rules"], 1):
        print("rule_%d=%d %d %d %d" % (i, r["admissions"], r["denials"],
                                       r["since"] == doc["started"],
                                       r["since"] == doc["restarted"]))
    for c in doc["clients"]:
        m = re.search(r"(?:^|,)CN=([^,]*)", c["subject"])
        print("client_%s=%d" % (m[1] if m else c["subject"], c["requests"]))
    print("clients=%d" % len(doc["clients"]))
    return 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--summary":
        return summary(sys.argv[2])
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--stop", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--every", type=float, default=1.0)
    ap.add_argument("--plain", action="store_true")
    a = ap.parse_args()

    polls = ok = 0
    failures = []
    last_json = None
    prev = {}
    queries = [""] if a.plain else ["", "?json", "?prometheus"]
    # At least one poll, however short the load.
    while polls == 0 or not os.path.exists(a.stop):
        t0 = time.monotonic()
        polls += 1
        for q in queries:
            try:
                status, ctype, body = fetch(a.url + q)
                if status != 200:
                    raise Bad("%s: status %d" % (q or "html", status))
                if a.plain:
                    pass
                elif q == "":
                    check_html(ctype, body)
                elif q == "?json":
                    doc = check_json(ctype, body)
                    last_json = body
                    for r in doc["rules"]:
                        key = (r["rule"], r["scope"])
                        for k in ("admissions", "denials"):
                            if r[k] < prev.get(key + (k,), 0):
                                raise Bad("json: %s %s: %s went down from %d to %d"
                                          % (r["rule"], r["scope"], k, prev[key + (k,)], r[k]))
                            prev[key + (k,)] = r[k]
                else:
                    check_prometheus(ctype, body)
                ok += 1
            except (Bad, ValueError, OSError, UnicodeDecodeError) as e:
                failures.append("%s %s: %s" % (time.strftime("%H:%M:%S"), q or "html", e))
        while time.monotonic() - t0 < a.every and not os.path.exists(a.stop):
            time.sleep(0.05)

    with open(a.out, "w") as f:
        f.write("polls=%d\nanswers=%d\nanswers_ok=%d\nfailures=%d\n"
                % (polls, polls * len(queries), ok, len(failures)))
        for msg in failures[:10]:
            f.write("failure=%s\n" % msg.replace("\n", " "))
    if last_json is not None:
        with open(a.out + ".json", "wb") as f:
            f.write(last_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
