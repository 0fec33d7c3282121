/**
 * What opsctl restore asks of pg_restore for the script itself: the source's owners and
 * grants are left out (the target's roles are not the source's). Verify's pg_restore reader
 * and the differential test's oracle read with the same options, so they judge the script
 * restore runs: without --no-owner, pg_restore 18 refuses an entry type it cannot set an
 * owner for ("don't know how to set owner for object type"), which restore never asks.
 */
export const RESTORE_SCRIPT_OPTIONS: readonly string[] = ['--no-owner', '--no-privileges'];
