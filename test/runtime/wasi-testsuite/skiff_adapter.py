#!/usr/bin/env python3
# Adapter for the official WebAssembly wasi-testsuite runner: `wasi_test_runner.py -r skiff_adapter.py ...`.
# `skiff run` takes wasmtime's flags, so the runner's --dir/--env/--arg pass straight through.
# Set SKIFF to the command (default `skiff`; from a checkout: "node /path/to/bin/skiff.js").
import argparse, os, shlex, subprocess, sys

p = argparse.ArgumentParser()
p.add_argument("--version", action="store_true")
p.add_argument("--test-file")
for flag in ("--arg", "--env", "--dir"):
    p.add_argument(flag, action="append", default=[])
a = p.parse_args()
skiff = shlex.split(os.environ.get("SKIFF", "skiff"))
if a.version:
    sys.exit(subprocess.run(skiff + ["version"]).returncode)
opts = [x for d in a.dir for x in ("--dir", d)] + [x for e in a.env for x in ("--env", e)]
sys.exit(subprocess.run(skiff + ["run", *opts, a.test_file, "--", *a.arg]).returncode)
