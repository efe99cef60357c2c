#!/usr/bin/env bash
# Makes a Git repository from examples/gitops/repo (with the demo's module) and points the running
# Skiff at it: `bash examples/gitops/setup.sh [REPO_DIR]` (default .skiff/gitops-demo).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
repo=$(realpath -m "${1:-$root/.skiff/gitops-demo}")
if [ -e "$repo/.git" ]; then
  echo "$repo is already a repository; commit to it, or remove it to start again" >&2
  exit 1
fi
mkdir -p "$repo"
cp -R "$here/repo/." "$repo/"
cp "$root/examples/hello/hello.wasm" "$repo/apps/hello/hello.wasm"
git -C "$repo" init -q -b main
git -C "$repo" add -A
git -C "$repo" -c user.name=demo -c user.email=demo@example.com commit -q -m "demo: policies and the hello app"
sed "s|REPOSITORY|$repo|" "$here/cluster.yaml" | "$root/bin/skiff.js" apply -f -
echo "repository: $repo"
