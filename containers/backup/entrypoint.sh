#!/bin/sh
# Entrypoint of the Fargate task: the same opsctl as on an operator's shell. The task's
# command is the opsctl command line, e.g. ["backup", "postgres", "--name", "callcenter"].
# exec keeps opsctl as the process that receives SIGTERM when ECS stops the task.
set -eu
APP_DIR="${OPS_APP_DIR:-/app}"
exec node "$APP_DIR/bin/opsctl.js" "$@"
