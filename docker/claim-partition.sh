#!/bin/sh
# petal-claim-partition: gives each petal-client replica of docker-compose.yml
# its own partition id, then runs the client with it.
#   petal-claim-partition --reset             empty the shared slot folder (the
#                                             `partitions` service, once per `up`)
#   petal-claim-partition COMMAND [ARG...]    claim the lowest free id in
#                                             [0, PETAL_NUM_CLIENTS), then exec
#                                             COMMAND ARG... --set client.partition_id=ID
# Replicas of one Compose service cannot be told apart by configuration, so
# they claim slots: directories made with mkdir (atomic) in PETAL_SLOTS_DIR, a
# volume they share. The id is remembered in PETAL_ID_FILE, inside the
# container, so a container restarted by its restart policy keeps its
# partition (and its local state). PETAL_PARTITION_ID, when set, is used as is.
slots=${PETAL_SLOTS_DIR:-/petal/slots}
id_file=${PETAL_ID_FILE:-/tmp/petal-partition-id}
me=petal-claim-partition

if [ "${1:-}" = "--reset" ]; then
  mkdir -p "$slots" || exit 1
  rm -rf "$slots"/[0-9]*
  echo "$me: cleared the partition slots in $slots" >&2
  exit 0
fi
if [ $# -eq 0 ]; then
  echo "usage: $me --reset | COMMAND [ARG...]" >&2
  exit 2
fi
n=${PETAL_NUM_CLIENTS:-}
case "$n" in
  ''|*[!0-9]*|0) echo "$me: PETAL_NUM_CLIENTS must be a positive integer, got '$n'" >&2; exit 2 ;;
esac

if [ -n "${PETAL_PARTITION_ID:-}" ]; then
  id=$PETAL_PARTITION_ID
elif [ -s "$id_file" ]; then
  id=$(cat "$id_file")
  echo "$me: keeping partition $id (restarted container)" >&2
else
  id=""
  i=0
  while [ "$i" -lt "$n" ]; do
    if mkdir "$slots/$i" 2>/dev/null; then
      id=$i
      cat /etc/hostname > "$slots/$i/owner" 2>/dev/null
      break
    fi
    i=$((i + 1))
  done
  if [ -z "$id" ]; then
    echo "$me: all $n partition slots in $slots are taken: more replicas than" \
         "PETAL_NUM_CLIENTS, or slots left from an earlier run (the partitions service clears them)" >&2
    exit 1
  fi
  echo "$id" > "$id_file"
fi
case "$id" in
  ''|*[!0-9]*) echo "$me: bad partition id '$id'" >&2; exit 2 ;;
esac
if [ "$id" -ge "$n" ]; then
  echo "$me: partition id $id is not below PETAL_NUM_CLIENTS=$n" >&2
  exit 2
fi
echo "$me: partition $id of $n" >&2
exec "$@" --set "client.partition_id=$id"
