#!/usr/bin/python3
"""Boot the lab N times and report how long each stage took and how often a
boot failed (and why). Prints figures; asserts nothing.

    tests/lab/bench_boot.py [--build build] [-n 5] [--guest tiny --guest linux]
"""
import argparse
import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import lab as lablib  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("-n", type=int, default=5)
    ap.add_argument("--guest", action="append")
    args = ap.parse_args()
    guests = args.guest or ["tiny", "linux"]
    runs, failures = [], []
    for i in range(args.n):
        with tempfile.TemporaryDirectory(prefix="vmistub-boot-") as run_dir, \
                lablib.Lab(args.build, run_dir=run_dir, log=lambda m: None) as lab:
            t = time.monotonic()
            try:
                lab.start()
                for g in guests:
                    lab.create_guest(g, attempts=1)
                runs.append(lab.figures)
                print(f"boot {i + 1}: {lab.figures}", flush=True)
            except lablib.LabError as e:
                reason = str(e).splitlines()[0]
                failures.append(reason)
                print(f"boot {i + 1}: FAILED after {time.monotonic() - t:.1f} s: {reason}",
                      flush=True)
    print(f"\n{len(runs)} of {args.n} boots succeeded")
    for reason in failures:
        print(f"  failure: {reason}")
    for key in sorted({k for r in runs for k in r}):
        values = [r[key] for r in runs if key in r]
        print(f"{key}: median {statistics.median(values)} "
              f"(min {min(values)}, max {max(values)}, n={len(values)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
