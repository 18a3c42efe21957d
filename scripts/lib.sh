# Shell helpers the project's scripts share; sourced, never run. Bash only (/dev/tcp).

# host and port of a URL such as scheme://user:pass@host:port/path
host_of() { local hp="${1#*://}"; hp="${hp##*@}"; hp="${hp%%/*}"; echo "${hp%:*}"; }
port_of() { local hp="${1#*://}"; hp="${hp##*@}"; hp="${hp%%/*}"; echo "${hp##*:}"; }

# Whether something accepts TCP connections at host:port. Quiet: bash reports a refused
# connection on the subshell's stderr, which goes nowhere.
reachable() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# A loopback port nothing listens on right now (another process may take it before we
# bind it: callers check that their own service is the one that answers).
free_port() {
  local port
  for port in $(shuf -i 20000-60000 -n 100); do
    reachable 127.0.0.1 "$port" || { echo "$port"; return; }
  done
  echo "no free port found" >&2
  exit 1
}

# The status code of GET http://127.0.0.1:$1$2, or nothing when nothing answers.
http_status() {
  ( exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 0
    printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$2" >&3
    IFS= read -r -t 2 line <&3 || true
    echo "$line" | cut -d' ' -f2 ) 2>/dev/null || true
}
