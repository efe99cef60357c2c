#!/usr/bin/env bash
# Makes a Git repository from examples/gitops/repo, with the demo's module committed beside its
# manifest: `bash examples/gitops/setup.sh [REPO_DIR]` (default /tmp/gitops-demo). Then it prints
# how to point Skiff at it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
repo=$(realpath -m "${1:-/tmp/gitops-demo}")
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
cat <<NEXT
made $repo (branch main, $(git -C "$repo" rev-parse --short HEAD)). Next:
  skiff up --demo --allow-host-dir $repo &      # Skiff may read a local repository only where granted
  sed 's|REPOSITORY|$repo|' examples/gitops/cluster.yaml | skiff apply -f -
  skiff sync apps
NEXT
