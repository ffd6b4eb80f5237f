#!/usr/bin/env bash
# The amd64 package's life on this machine, as an integrator's box lives it:
# install, check the configuration, publish to its MQTT listener, edit the
# configuration, upgrade to a higher revision (edit and buffer survive),
# remove (buffer and configuration stay), purge (both go).
#
#   packaging/test-package.sh OLD.deb NEW.deb
#
# Needs root. Leaves the machine without the package. Services run in the
# foreground here (CI machines have no running systemd); the unit file is
# checked with systemd-analyze when it is available.
set -euo pipefail
old=$(realpath "$1")
new=$(realpath "$2")
say() { printf '\n--- test-package: %s\n' "$*"; }
fail() { printf 'test-package: FAILED: %s\n' "$*" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
work=$(mktemp -d)
broker=""
cleanup() {
  [[ -n "$broker" ]] && kill "$broker" 2>/dev/null || true
  dpkg -P tidegate >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

say "install $(basename "$old")"
dpkg -P tidegate >/dev/null 2>&1 || true
# As an integrator without apt sources would: dpkg -i. Its dependencies are
# the build's runtime libraries plus adduser, which apt provides first.
apt-get install -y -qq --no-install-recommends adduser >/dev/null
dpkg -i "$old" >/dev/null
[[ "$(dpkg-query -W -f='${Version}' tidegate)" == "$(dpkg-deb -f "$old" Version)" ]] || fail "version not installed"
for f in /usr/bin/tidegate /lib/systemd/system/tidegate.service /etc/tidegate/tidegate.toml /etc/default/tidegate \
         /etc/mosquitto/conf.d/tidegate.conf /usr/share/man/man1/tidegate.1.gz /usr/share/doc/tidegate/copyright \
         /usr/share/doc/tidegate/operations.md /usr/share/doc/tidegate/README /usr/share/doc/tidegate/cloud.md; do
  [[ -e "$f" ]] || fail "$f missing"
done
dpkg-query -W -f='${Conffiles}\n' tidegate | grep -q /etc/tidegate/tidegate.toml || fail "tidegate.toml is not a conffile"
dpkg-query -W -f='${Conffiles}\n' tidegate | grep -q /etc/default/tidegate || fail "/etc/default/tidegate is not a conffile"
getent passwd tidegate >/dev/null || fail "no tidegate user"
[[ "$(stat -c %U:%a /var/lib/tidegate)" == "tidegate:750" ]] || fail "state directory: $(stat -c %U:%a /var/lib/tidegate)"
[[ "$(stat -c %G:%a /etc/tidegate/tidegate.toml)" == "tidegate:640" ]] || fail "configuration permissions"
[[ "$(stat -c %G:%a /etc/default/tidegate)" == "tidegate:640" ]] || fail "environment file permissions"
[[ -L /etc/systemd/system/multi-user.target.wants/tidegate.service ]] || fail "service not enabled"
tidegate --version
man -l /usr/share/man/man1/tidegate.1.gz >/dev/null 2>&1 || zcat /usr/share/man/man1/tidegate.1.gz | grep -q "SYNOPSIS"
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify /lib/systemd/system/tidegate.service || fail "systemd-analyze verify"
fi

say "check-config with the installed configuration, as the service user"
runuser -u tidegate -- tidegate check-config --config /etc/tidegate/tidegate.toml
# Without --config: the service's configuration and its environment file,
# as root (sudo) and as the service.
tidegate check-config
runuser -u tidegate -- tidegate check-config

say "run: sensors publish to the gateway's listener"
port=$(free_port)
status_port=$(free_port)
# The installed configuration with only the listener port and the status
# address changed (this machine's 1883 and 8080 may be taken).
sed -e "s|^listen = \"127.0.0.1:1883\"|listen = \"127.0.0.1:$port\"|" \
    -e "s|^listen = \"0.0.0.0:8080\"|listen = \"127.0.0.1:$status_port\"|" \
  /etc/tidegate/tidegate.toml > "$work/tidegate.toml"
grep -q "127.0.0.1:$status_port" "$work/tidegate.toml" || fail "the installed configuration has no [status] listen line to adapt"
grep -q "127.0.0.1:$port" "$work/tidegate.toml" || fail "the installed configuration has no listener listen line to adapt"
chown root:tidegate "$work/tidegate.toml"; chmod 0640 "$work/tidegate.toml"; chmod 0755 "$work"
# setpriv execs the gateway itself, so the signal below reaches it directly.
setpriv --reuid=tidegate --regid=tidegate --init-groups tidegate run --config "$work/tidegate.toml" >"$work/run.log" 2>&1 &
gw=$!
for _ in $(seq 100); do grep -q "running with" "$work/run.log" && break; sleep 0.1; done
for i in $(seq 1 20); do mosquitto_pub -p "$port" -q 1 -t "sensors/dev-$i/temp" -m "{\"t\":$i}" || fail "publish $i"; done
for _ in $(seq 100); do
  curl -s "http://127.0.0.1:$status_port/api/status" | grep -q '"appended_total":20' && break
  sleep 0.1
done
curl -s "http://127.0.0.1:$status_port/readyz" | grep -q ready || fail "status page not ready: $(cat "$work/run.log")"
kill -TERM $gw
wait $gw || fail "the gateway did not stop cleanly: $(cat "$work/run.log")"
next_seq() {
  tidegate buffer stats --config /etc/tidegate/tidegate.toml | python3 -c 'import json,sys; print(json.load(sys.stdin)["next_seq"])'
}
[[ "$(next_seq)" -eq 21 ]] || fail "the buffer took $(( $(next_seq) - 1 )) records, expected 20: $(cat "$work/run.log")"
delivered=$(cat /var/lib/tidegate/out/* | grep -c '"topic":"sensors/dev-')
[[ "$delivered" -eq 20 ]] || fail "the local file sink holds $delivered records, expected 20"
[[ "$(stat -c %U /var/lib/tidegate/buffer.db)" == tidegate ]] || fail "buffer not owned by tidegate"

say "edit the configuration, upgrade to $(basename "$new")"
sed -i 's/^log_level = "info"/log_level = "warning"  # edited by the operator/' /etc/tidegate/tidegate.toml
grep -q "edited by the operator" /etc/tidegate/tidegate.toml || fail "edit not applied"
dpkg -i --force-confold "$new" >/dev/null
[[ "$(dpkg-query -W -f='${Version}' tidegate)" == "$(dpkg-deb -f "$new" Version)" ]] || fail "upgrade not installed"
grep -q "edited by the operator" /etc/tidegate/tidegate.toml || fail "the upgrade overwrote the operator's edit"
[[ "$(next_seq)" -eq 21 ]] || fail "the buffer lost its state in the upgrade (next sequence $(next_seq))"
[[ "$(cat /var/lib/tidegate/out/* | grep -c '"topic":"sensors/dev-')" -eq 20 ]] || fail "the upgrade lost delivered files"

say "remove: the buffer and the configuration stay"
dpkg -r tidegate >/dev/null
[[ ! -e /usr/bin/tidegate ]] || fail "binary still there"
[[ -f /var/lib/tidegate/buffer.db ]] || fail "remove deleted the buffer"
grep -q "edited by the operator" /etc/tidegate/tidegate.toml || fail "remove deleted the configuration"

say "purge: both go"
dpkg -P tidegate >/dev/null
[[ ! -e /var/lib/tidegate ]] || fail "purge left /var/lib/tidegate"
[[ ! -e /etc/tidegate/tidegate.toml ]] || fail "purge left the configuration"
[[ ! -e /etc/default/tidegate ]] || fail "purge left the environment file"
[[ ! -e /etc/mosquitto/conf.d/tidegate.conf ]] || fail "purge left the mosquitto drop-in"
say "passed"
