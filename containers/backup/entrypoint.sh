#!/bin/sh
# Entrypoint of the Fargate task: the same opsctl as on an operator's shell. The task's
# command is the opsctl command line, e.g. ["backup", "postgres", "--name", "callcenter"].
# In AWS the configuration arrives from SSM Parameter Store as OPS_CONFIG_JSON (an ECS
# secret, so each task reads the current version without a redeploy); it is written to
# a private file because opsctl reads configuration from a file.
# exec keeps opsctl as the process that receives SIGTERM when ECS stops the task.
set -eu
APP_DIR="${OPS_APP_DIR:-/app}"
if [ -n "${OPS_CONFIG_JSON:-}" ] && [ -z "${OPS_CONFIG:-}" ]; then
  dir="$(mktemp -d)"
  (umask 077 && printf '%s' "$OPS_CONFIG_JSON" > "$dir/ops.config.json")
  unset OPS_CONFIG_JSON
  export OPS_CONFIG="$dir/ops.config.json"
fi
# bin/opsctl, not bin/opsctl.js: it starts Node as an operator's shell does (its V8 flags).
exec "$APP_DIR/bin/opsctl" "$@"
