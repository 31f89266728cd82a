#!/usr/bin/env bash
# Back up Alur: the PostgreSQL database (pg_dump custom format) and the attachments folder (tar.gz).
#
#   deploy/backup.sh [DEST_DIR]        (default: $ALUR_BACKUP_DIR, else /var/backups/alur)
#
# Reads ALUR_DATABASE_URL (postgresql[+driver]://user:password@host:port/db[?options]) and ALUR_INSTANCE_DIR
# (whose attachments/ folder is archived), e.g. from /etc/alur/alur.env. Writes, with one UTC timestamp:
#   DEST/alur-YYYYMMDDTHHMMSSZ.dump                    the database
#   DEST/alur-YYYYMMDDTHHMMSSZ-attachments.tar.gz      the attachments
#   DEST/alur-YYYYMMDDTHHMMSSZ.sha256                  checksums of both
# Files appear only when complete (written under a temporary name, then renamed). Backups older than
# $ALUR_BACKUP_KEEP_DAYS days (default 14; 0 keeps everything) are removed afterwards.
#
# Consistency while Alur runs: pg_dump reads one snapshot. The database is dumped first and the attachments
# afterwards; a file is always written before its row is committed, so every attachment the dump mentions
# is in the archive (the archive may hold a few newer files, which is harmless).
set -euo pipefail

die() { echo "backup.sh: $*" >&2; exit 1; }

dest="${1:-${ALUR_BACKUP_DIR:-/var/backups/alur}}"
url="${ALUR_DATABASE_URL:-}"
instance_dir="${ALUR_INSTANCE_DIR:-}"
keep_days="${ALUR_BACKUP_KEEP_DAYS:-14}"

[ -n "$url" ] || die "ALUR_DATABASE_URL is not set"
case "$url" in
    postgresql:*|postgresql+*:*|postgres:*) ;;
    *) die "ALUR_DATABASE_URL is not a PostgreSQL URL (for SQLite, copy the file with 'sqlite3 … .backup')" ;;
esac
[ -n "$instance_dir" ] || die "ALUR_INSTANCE_DIR is not set (the folder that holds attachments/)"
command -v pg_dump >/dev/null || die "pg_dump not found (apt-get install postgresql-client)"

# SQLAlchemy's "postgresql+psycopg://" is libpq's "postgresql://".
pg_url="$(printf '%s' "$url" | sed -E 's#^postgres(ql)?(\+[A-Za-z0-9_]+)?://#postgresql://#')"

umask 077
mkdir -p "$dest"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
base="$dest/alur-$stamp"
trap 'rm -f "$base.dump.partial" "$base-attachments.tar.gz.partial"' EXIT

pg_dump --format=custom --compress=6 --no-password --file="$base.dump.partial" --dbname="$pg_url" \
    || die "pg_dump failed"
mv "$base.dump.partial" "$base.dump"

if [ -d "$instance_dir/attachments" ]; then
    tar --create --gzip --file="$base-attachments.tar.gz.partial" --directory="$instance_dir" \
        --exclude='.upload-*' attachments || die "tar of $instance_dir/attachments failed"
else
    # No upload yet: an empty archive, so a restore finds the pair it expects.
    tar --create --gzip --file="$base-attachments.tar.gz.partial" --files-from=/dev/null
fi
mv "$base-attachments.tar.gz.partial" "$base-attachments.tar.gz"

(cd "$dest" && sha256sum "alur-$stamp.dump" "alur-$stamp-attachments.tar.gz" > "alur-$stamp.sha256")

if [ "$keep_days" -gt 0 ] 2>/dev/null; then
    find "$dest" -maxdepth 1 -type f -name 'alur-*' -mtime "+$keep_days" -delete
fi

echo "backup written: $base.dump ($(du -h "$base.dump" | cut -f1)), $base-attachments.tar.gz ($(du -h "$base-attachments.tar.gz" | cut -f1))"
