"""A host program for test_journal.py: a 40-task batch that survives being SIGKILLed.

Every run: open the client on the journal, resume() what the journal knows, drain, then
submit every task this host has no delivery for, and drain again. Each on_done delivery
is appended to <state>/deliveries.log and fsync'd before the callback returns, so a
delivery counts once it is recorded.

How the host decides what to (re)submit, from its own records only:
  - a tag with a recorded delivery is finished;
  - after resume() + drain(), every task the journal knew has been delivered, so a tag
    with no delivery at all was never journalled, hence never sent: submit it;
  - a tag delivered as APIXO_ERR_INDETERMINATE (the host died between sending the
    submit and recording its answer) may exist on the server. This host checks the
    provider's dashboard (here the simulator's count of tasks created) and resubmits only if
    no task exists; otherwise it keeps the INDETERMINATE outcome.

Prints one line per event (started, resumed, submitted TAG, delivered TAG CODE, done).
"""

import argparse
import json
import os
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import apixo  # noqa: E402


def say(*words):
    print(*words, flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sim", required=True, help="simulator root URL")
    ap.add_argument("--journal", required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--count", type=int, default=40)
    args = ap.parse_args()
    log_path = os.path.join(args.state, "deliveries.log")

    def prompt(tag):
        fail = "[fail:GENERATION_FAILED] " if int(tag.rsplit("-", 1)[1]) % 7 == 3 else ""
        return f"{fail}{args.prefix} {tag}"

    def record(line):
        fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def deliveries():
        out = {}
        if os.path.exists(log_path):
            with open(log_path) as f:
                for line in f:
                    parts = line.rstrip("\n").split("\t")
                    if len(parts) >= 2:
                        out.setdefault(parts[0], []).append(parts[1])
        return out

    def dashboard_submits(p):
        with urllib.request.urlopen(args.sim + "/_sim/stats", timeout=10) as r:
            return json.loads(r.read())["data"]["tasks_by_prompt"].get(p, 0)

    def on_done(task, err):
        tag = task.tag if task is not None else None
        code = "APIXO_OK" if err is None else err.code_name
        record(f"{tag}\t{code}\t{task.id if task is not None else ''}")
        say("delivered", tag, code)

    client = apixo.Client(api_key="sk-sim", base_url=args.sim + "/api/v1", time_scale=0.01,
                          journal=args.journal, logger=False)
    say("started")
    client.resume(on_done)
    client.drain(timeout=20)
    say("resumed")

    seen = deliveries()
    tags = [f"t-{i}" for i in range(args.count)]
    for tag in tags:
        codes = seen.get(tag)
        if codes and codes[-1] == "APIXO_ERR_INDETERMINATE":
            if dashboard_submits(prompt(tag)) > 0:
                continue  # it exists: never pay twice
        elif codes:
            continue
        client.submit(prompt(tag), max_images=1, tag=tag, on_done=on_done)
        say("submitted", tag)
    client.drain(timeout=20)
    client.close()
    say("done")


if __name__ == "__main__":
    main()
