#!/usr/bin/env python3
"""Compares two outputs of tests/mlmd/suite.py step by step.

    compare.py EXPECTED.json ACTUAL.json [--context N] [--max-lines N] [--max-steps N]

Prints each differing step as a compact unified diff of its result (pretty-printed JSON, so a
difference shows as the few lines it touches), steps present in one output only, and a
difference in the client methods the two runs called; then `N steps, M differ`. Exit status 0
when everything matches, 1 when anything differs, 2 when an input cannot be read.
"""

import argparse
import difflib
import json
import sys


def load(path):
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        print(f"compare: cannot read {path}: {e}", file=sys.stderr)
        sys.exit(2)
    if not isinstance(doc, dict) or not isinstance(doc.get("steps"), list):
        print(f"compare: {path} is not a suite output (no steps)", file=sys.stderr)
        sys.exit(2)
    return doc


def lines(value):
    return json.dumps(value, indent=1, sort_keys=True).splitlines()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("expected")
    parser.add_argument("actual")
    parser.add_argument("--context", type=int, default=2, help="lines of context around a change (2)")
    parser.add_argument("--max-lines", type=int, default=60, help="diff lines shown per step (60)")
    parser.add_argument("--max-steps", type=int, default=0,
                        help="show the diffs of the first N differing steps only, then just names (0: all)")
    args = parser.parse_args()
    a, b = load(args.expected), load(args.actual)

    steps_a = {s["step"]: s.get("result") for s in a["steps"]}
    steps_b = {s["step"]: s.get("result") for s in b["steps"]}
    # Every step in order of the expected output, then steps only the actual one has.
    order = [s["step"] for s in a["steps"]] + [s["step"] for s in b["steps"] if s["step"] not in steps_a]

    differ = 0
    for name in order:
        if name not in steps_b:
            differ += 1
            print(f"--- step {name}: missing from {args.actual}")
            continue
        if name not in steps_a:
            differ += 1
            print(f"+++ step {name}: only in {args.actual}")
            continue
        if steps_a[name] == steps_b[name]:
            continue
        differ += 1
        if args.max_steps and differ > args.max_steps:
            print(f"=== step {name} (diff not shown)")
            continue
        diff = list(difflib.unified_diff(lines(steps_a[name]), lines(steps_b[name]), "expected", "actual",
                                         n=args.context, lineterm=""))[2:]  # drop the ---/+++ header
        print(f"=== step {name}")
        for line in diff[: args.max_lines]:
            print("  " + line)
        if len(diff) > args.max_lines:
            print(f"  ... {len(diff) - args.max_lines} more diff lines")

    methods_a, methods_b = set(a.get("methods_called", [])), set(b.get("methods_called", []))
    if methods_a != methods_b:
        print(f"=== methods_called: only expected {sorted(methods_a - methods_b)}, "
              f"only actual {sorted(methods_b - methods_a)}")
        differ += 1

    print(f"{len(order)} steps, {differ} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
