#!/usr/bin/env bash
# The yardstick of DESIGN.md's performance budget: rsyslog (the C shipper Debian ships) moving N lines
# of B bytes file → TCP → file on this machine, two rsyslogd instances (imfile → omfwd/TCP → imtcp →
# omfile). Needs `apt-get install rsyslog`; prints one line like the e2e benchmark.
#   bash bench/rsyslog-baseline.sh [lines=1000000] [lineBytes=120]
set -euo pipefail
lines=${1:-1000000}
bytes=${2:-120}
command -v rsyslogd >/dev/null || { echo "rsyslog baseline: rsyslogd not installed (apt-get install rsyslog)"; exit 0; }
dir=$(mktemp -d /tmp/mc-rsyslog-XXXXXX)
pids=()
# rsyslogd -n does not fork, so the pids are the background jobs' own (its -i pid file is not
# written in that mode); without this the two daemons outlived the script.
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
mkdir -p "$dir/send" "$dir/recv"
port=$(( 20000 + RANDOM % 20000 ))
node -e '
const fs=require("fs");const [path,n,b]=[process.argv[1],+process.argv[2],+process.argv[3]];
const fd=fs.openSync(path,"w");const per=Math.floor((4<<20)/b);const buf=Buffer.alloc(per*b,0x78);
for(let i=0;i<n;){const k=Math.min(per,n-i);for(let j=0;j<k;j++){const s=j*b;buf.write(String(i+j).padStart(10,"0")+" bench line ",s,"latin1");buf[s+b-1]=10;}fs.writeSync(fd,buf,0,k*b);i+=k;}
fs.closeSync(fd);' "$dir/input.log" "$lines" "$bytes"

cat > "$dir/recv.conf" <<CONF
global(workDirectory="$dir/recv" maxMessageSize="64k")
main_queue(queue.size="1000000" queue.dequeueBatchSize="4096" queue.workerThreads="1")
module(load="imtcp")
template(name="raw" type="string" string="%msg:2:\$%\n")
ruleset(name="out") { action(type="omfile" file="$dir/out.log" template="raw" asyncWriting="on" ioBufferSize="1m" flushOnTXEnd="off") }
input(type="imtcp" port="$port" ruleset="out")
CONF
cat > "$dir/send.conf" <<CONF
global(workDirectory="$dir/send" maxMessageSize="64k")
main_queue(queue.size="1000000" queue.dequeueBatchSize="4096")
module(load="imfile")
ruleset(name="fwd") { action(type="omfwd" target="127.0.0.1" port="$port" protocol="tcp" queue.type="LinkedList" queue.size="200000" queue.dequeueBatchSize="4096") }
CONF
rsyslogd -n -f "$dir/recv.conf" -i "$dir/recv.pid" 2>"$dir/recv.err" &
pids+=($!)
sleep 0.5
start=$(date +%s.%N)
# The input is appended to the sender's config only now, so reading starts with the clock.
echo "input(type=\"imfile\" File=\"$dir/input.log\" Tag=\"bench\" freshStartTail=\"off\" ruleset=\"fwd\")" >> "$dir/send.conf"
rsyslogd -n -f "$dir/send.conf" -i "$dir/send.pid" 2>"$dir/send.err" &
pids+=($!)
# Poll the output's size (cheap), not its line count (reading 120 MB every tick would steal a core).
expected=$(( lines * bytes ))
for _ in $(seq 1 6000); do
  size=0; [ -f "$dir/out.log" ] && size=$(stat -c %s "$dir/out.log")
  [ "$size" -ge "$expected" ] && break
  sleep 0.02
done
end=$(date +%s.%N)
got=0; [ -f "$dir/out.log" ] && got=$(wc -l < "$dir/out.log")
secs=$(echo "$end - $start" | bc -l)
printf 'rsyslog baseline file→imfile→TCP→imtcp→file: %d of %d lines of %d B in %.2f s = %.0f lines/s, %.1f MiB/s\n' \
  "$got" "$lines" "$bytes" "$secs" "$(echo "$got / $secs" | bc -l)" "$(echo "$got * $bytes / $secs / 1048576" | bc -l)"
