#!/usr/bin/env bash
# Restore an Alur backup made by deploy/backup.sh into the database of ALUR_DATABASE_URL and the attachments
# folder of ALUR_INSTANCE_DIR.
#
#   deploy/restore.sh [--create] [--force] DUMP [ATTACHMENTS_TAR_GZ]
#
#   DUMP                 DEST/alur-<stamp>.dump
#   ATTACHMENTS_TAR_GZ   default: the archive next to DUMP (alur-<stamp>-attachments.tar.gz)
#   --create             create the database first (needs CREATEDB; connects to the "postgres" database of
#                        the same server)
#   --force              restore into a database that already holds tables (they are dropped and replaced)
#
# Stop the web and the workers first (systemctl stop alur-web 'alur-worker@*'). Afterwards run
# `alur init` (upgrades a backup made by an older Alur) and `alur check`, then start the services again.
set -euo pipefail

die() { echo "restore.sh: $*" >&2; exit 1; }

create=0
force=0
args=()
for arg in "$@"; do
    case "$arg" in
        --create) create=1 ;;
        --force) force=1 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        -*) die "unknown option $arg" ;;
        *) args+=("$arg") ;;
    esac
done
[ "${#args[@]}" -ge 1 ] && [ "${#args[@]}" -le 2 ] || die "usage: restore.sh [--create] [--force] DUMP [ATTACHMENTS_TAR_GZ]"
dump="${args[0]}"
files="${args[1]:-${dump%.dump}-attachments.tar.gz}"
url="${ALUR_DATABASE_URL:-}"
instance_dir="${ALUR_INSTANCE_DIR:-}"

[ -f "$dump" ] || die "no dump file $dump"
[ -f "$files" ] || die "no attachments archive $files (give it as the second argument)"
[ -n "$url" ] || die "ALUR_DATABASE_URL is not set"
[ -n "$instance_dir" ] || die "ALUR_INSTANCE_DIR is not set"
for tool in pg_restore psql tar; do command -v "$tool" >/dev/null || die "$tool not found"; done

sums="${dump%.dump}.sha256"
if [ -f "$sums" ]; then
    (cd "$(dirname "$dump")" && sha256sum --check --quiet "$(basename "$sums")") || die "checksum mismatch: $sums"
fi

pg_url="$(printf '%s' "$url" | sed -E 's#^postgres(ql)?(\+[A-Za-z0-9_]+)?://#postgresql://#')"
no_query="${pg_url%%\?*}"
dbname="${no_query##*/}"

if [ "$create" = 1 ]; then
    admin_url="${no_query%/*}/postgres"
    psql --no-password --quiet --dbname="$admin_url" -v ON_ERROR_STOP=1 \
        -c "CREATE DATABASE \"$dbname\"" || die "could not create database $dbname"
fi

tables="$(psql --no-password --dbname="$pg_url" -Atc \
    "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()")" \
    || die "cannot connect to the target database"
clean=()
if [ "$tables" != "0" ]; then
    [ "$force" = 1 ] || die "the target database is not empty ($tables tables); use --force to replace them"
    clean=(--clean --if-exists)
fi

pg_restore --no-password --no-owner --exit-on-error --single-transaction "${clean[@]}" \
    --dbname="$pg_url" "$dump" || die "pg_restore failed: nothing was restored"

mkdir -p "$instance_dir"
tar --extract --gzip --file="$files" --directory="$instance_dir" --no-same-owner \
    || die "extracting $files into $instance_dir failed"

echo "restored $dump into $dbname and $files into $instance_dir"
echo "next: alur init && alur check, then start alur-web and the workers"
