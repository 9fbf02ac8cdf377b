#!/bin/sh
# petal-healthcheck: the containers' health, from the kernel's socket tables.
#   petal-healthcheck listen PORT      healthy while something here listens on TCP PORT
#                                      (petal-server, the Flower server)
#   petal-healthcheck connected PORT   healthy while a connection to remote TCP PORT is
#                                      established (a petal-client in session with its server)
# Exit status 0 healthy, 1 not, 2 usage. POSIX sh and /proc only: nothing to
# install in the slim images.
mode=${1:-}
port=${2:-}
case "$mode" in
  listen) want_state=0A ;;     # TCP_LISTEN
  connected) want_state=01 ;;  # TCP_ESTABLISHED
  *) echo "usage: $0 listen|connected PORT" >&2; exit 2 ;;
esac
case "$port" in
  ''|*[!0-9]*) echo "usage: $0 listen|connected PORT" >&2; exit 2 ;;
esac
if [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
  echo "$0: port $port out of range" >&2
  exit 2
fi
hex=$(printf '%04X' "$port")
for table in /proc/net/tcp /proc/net/tcp6; do
  [ -r "$table" ] || continue
  # sl local_address rem_address st ...; addresses are HEXIP:HEXPORT
  while read -r _ local remote state _; do
    [ "$state" = "$want_state" ] || continue
    if [ "$mode" = listen ]; then endpoint=$local; else endpoint=$remote; fi
    if [ "${endpoint##*:}" = "$hex" ]; then
      exit 0
    fi
  done < "$table"
done
echo "$0: no TCP socket $mode on port $port" >&2
exit 1
