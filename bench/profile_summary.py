"""The top costs of a profiled training step: self time per operator, from the Chrome trace that
`bench_train --profile TRACE.json` writes (libtorch's profiler, one timed step).
    python3 bench/profile_summary.py TRACE.json [--top 20]
Self time is an event's duration less its children's on the same thread, so the rows add up to
the step. Operators run inside opine's own kernels' thread pools are not traced apart.
"""
import argparse
import collections
import json


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("--top", type=int, default=20)
    args = ap.parse_args()
    events = [e for e in json.load(open(args.trace)) if e.get("ph") == "X"]
    by_thread = collections.defaultdict(list)
    for e in events:
        by_thread[e["tid"]].append(e)
    self_us, calls = collections.Counter(), collections.Counter()
    for thread_events in by_thread.values():
        thread_events.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack, children = [], collections.Counter()
        for i, e in enumerate(thread_events):
            while stack and thread_events[stack[-1]]["ts"] + thread_events[stack[-1]]["dur"] <= e["ts"]:
                stack.pop()
            if stack:
                children[stack[-1]] += e["dur"]
            stack.append(i)
        for i, e in enumerate(thread_events):
            self_us[e["name"]] += e["dur"] - children[i]
            calls[e["name"]] += 1
    total = sum(self_us.values())
    print(f"{total / 1e6:.3f} s traced")
    for name, us in self_us.most_common(args.top):
        print(f"{us / 1e3:10.1f} ms {us / total:6.1%}  {calls[name]:6d} calls  {name}")


if __name__ == "__main__":
    main()
