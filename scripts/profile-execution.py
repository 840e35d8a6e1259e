#!/usr/bin/env python3
"""Instructions per execution of `scenarist serve`, counted by callgrind.

callgrind counts instructions, not seconds: the same binary, scenario and
load give the same count whatever else the shared machine is doing, so this
is the figure to compare two builds by (the load benchmark's CPU times move
by a quarter from one run to the next).

The daemon runs under `valgrind --tool=callgrind` with its default flags on
an SQLite file; the scenario is the load benchmark's (filter, set, one HTTP
POST to a local stand-in, here a Python one). After a warm-up, the counters
are zeroed, N webhooks are sent by 8 clients, and once every execution has
reached the stand-in the counters are dumped: instructions per execution,
then the heaviest functions (inclusive) per execution.

Usage (after `cargo build --release`):
    python3 scripts/profile-execution.py [N] [--binary PATH]
"""

import http.client
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

CLIENTS = 8


class Stand_in(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    calls = 0
    lock = threading.Lock()

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        with Stand_in.lock:
            Stand_in.calls += 1
        body = b'{"ok":true}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def send(port, hook, count, start):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for n in range(start, start + count):
        body = json.dumps({"email": f"Lead{n}@Example.com", "referral_code": f"R{n}"})
        conn.request("POST", f"/hooks/{hook}", body, {"content-type": "application/json"})
        answer = conn.getresponse()
        answer.read()
        if answer.status != 202:
            raise SystemExit(f"webhook answered {answer.status}")
    conn.close()


def load(port, total, offset):
    per = total // CLIENTS
    threads = [
        threading.Thread(target=send, args=(port, "lead", per, offset + i * per))
        for i in range(CLIENTS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return per * CLIENTS


def wait_for_calls(count, seconds=120):
    deadline = time.time() + seconds
    while Stand_in.calls < count and time.time() < deadline:
        time.sleep(0.05)
    if Stand_in.calls < count:
        raise SystemExit(f"only {Stand_in.calls} of {count} executions reached the stand-in")


def main():
    args = sys.argv[1:]
    binary = "target/release/scenarist"
    if "--binary" in args:
        i = args.index("--binary")
        binary = args[i + 1]
        del args[i : i + 2]
    total = int(args[0]) if args else 1000
    stand_in = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stand_in)
    threading.Thread(target=stand_in.serve_forever, daemon=True).start()
    downstream = f"http://127.0.0.1:{stand_in.server_address[1]}"
    with tempfile.TemporaryDirectory() as tmp:
        scenarios = os.path.join(tmp, "scenarios")
        os.mkdir(scenarios)
        with open(os.path.join(scenarios, "lead.yaml"), "w") as f:
            f.write(
                "name: lead\ntrigger:\n  webhook: { path: lead }\nsteps:\n"
                '  - id: referred\n    filter: { value: "{{ trigger.body.referral_code }}", exists: true }\n'
                '  - id: lead\n    set: { email: "{{ lower trigger.body.email }}", code: "{{ trigger.body.referral_code }}" }\n'
                f'  - id: crm\n    http: {{ method: POST, url: "{downstream}/crm/leads", json: "{{{{ steps.lead }}}}" }}\n'
            )
        out = os.path.join(tmp, "callgrind.out")
        daemon = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary, "serve",
             "--listen", "127.0.0.1:0", "--store", f"sqlite://{tmp}/store.db", "--dir", scenarios],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env={**os.environ, "SCENARIST_LOG": "warn"},
        )
        try:
            first = daemon.stdout.readline()
            port = int(first.strip().rsplit(":", 1)[1])
            warm = load(port, 200, 0)
            wait_for_calls(warm)
            subprocess.run(["callgrind_control", "-z", str(daemon.pid)], check=True,
                           stdout=subprocess.DEVNULL)
            sent = load(port, total, warm)
            wait_for_calls(warm + sent)
            time.sleep(0.5)
            subprocess.run(["callgrind_control", "-d", str(daemon.pid)], check=True,
                           stdout=subprocess.DEVNULL)
            dumps = sorted(p for p in os.listdir(tmp) if p.startswith("callgrind.out."))
            dump = os.path.join(tmp, dumps[-1])
            annotated = subprocess.run(
                ["callgrind_annotate", "--inclusive=yes", "--threshold=100", dump],
                capture_output=True, text=True, check=True,
            ).stdout
        finally:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=60)
            except subprocess.TimeoutExpired:
                daemon.kill()
    total_ir = None
    rows = []
    for line in annotated.splitlines():
        m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(PROGRAM TOTALS|\S.*)$", line)
        if not m:
            continue
        ir = int(m.group(1).replace(",", ""))
        if m.group(2) == "PROGRAM TOTALS":
            total_ir = ir
        else:
            rows.append((ir, m.group(2)))
    print(f"{sent} executions, {total_ir:,} instructions: {total_ir / sent:,.0f} per execution")
    wanted = re.compile(
        r"scenarist::(store::sqlite::writer|daemon::webhook::\w+|daemon::workers::run_claimed|"
        r"daemon::workers::run::|engine::run::Interpreter::run_block|engine::effects::.*http|"
        r"store::sqlite::store_impl::(finish_in|steps_in)|store::sqlite::rows::\w+|"
        r"store::sqlite::readers::\w+)|sqlite3_step$|sqlite3BtreeCommitPhaseOne|"
        r"hyper::proto::h1::dispatch|reqwest::async_impl::client::Client::execute_request|"
        r"tokio::task::spawn::spawn$"
    )
    shown = set()
    for ir, name in rows:
        short = re.sub(r"^\?\?\?:|\s*\[.*\]$", "", name)
        if ir / total_ir < 0.01 or short.startswith("core::ptr::drop_in_place"):
            continue
        if wanted.search(short) and short not in shown:
            shown.add(short)
            print(f"  {ir / sent:>10,.0f}  {ir / total_ir:6.1%}  {short[:110]}")


if __name__ == "__main__":
    main()
