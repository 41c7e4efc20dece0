#!/bin/sh
# Development certificates for mTLS between the collectors and the aggregator (MC_TLS=1 in
# docker-compose.yml). NOT for production: the CA key is left beside the certificates and the keys are
# readable by every user (so the containers' `node` user can read them through the bind mount).
#
#   deploy/dev-certs.sh [DIR] [EXTRA_SERVER_NAME...]
#
# Writes into DIR (default ./certs): ca.crt ca.key, server.crt server.key (names: aggregator, localhost,
# 127.0.0.1, ::1 and any EXTRA_SERVER_NAME, e.g. the aggregator's host name), client.crt client.key.
# Existing files are replaced. MC_CERT_DAYS sets the validity (default 365).
set -eu

dir=${1:-certs}
[ "$#" -gt 0 ] && shift
days=${MC_CERT_DAYS:-365}

command -v openssl >/dev/null 2>&1 || { echo "dev-certs.sh: openssl is not installed" >&2; exit 1; }
mkdir -p "$dir"
cd "$dir"

san="DNS:aggregator,DNS:localhost,IP:127.0.0.1,IP:::1"
for name in "$@"; do
  case $name in
    *[!0-9.]*) case $name in *:*) san="$san,IP:$name" ;; *) san="$san,DNS:$name" ;; esac ;;
    *) san="$san,IP:$name" ;;
  esac
done

ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"

# shellcheck disable=SC2086
openssl req -x509 $ec -keyout ca.key -out ca.crt -days "$days" -subj "/CN=mega-collector development CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

leaf() { # name subject extensions
  printf '%s\n' "$3" > "$1.ext"
  # shellcheck disable=SC2086
  openssl req $ec -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days "$days" \
    -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

leaf server "/CN=aggregator" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=$san"
leaf client "/CN=mega-collector" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
rm -f ca.srl

chmod 0644 ca.crt server.crt client.crt server.key client.key
chmod 0600 ca.key
openssl verify -CAfile ca.crt server.crt client.crt >/dev/null
echo "dev-certs.sh: wrote $(pwd)/{ca,server,client}.{crt,key}; server names: $san"
