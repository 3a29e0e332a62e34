#!/bin/sh
# Stand-in entrypoint for a sidecar/agent image that does not exist yet: ignore the
# container's command, trust the bottle's egress CA when one was uploaded, stay alive.
CA=/etc/claude-bottle/ca/egress-ca.pem
if [ -f "$CA" ] && [ -w /etc/ssl/certs/ca-certificates.crt ]; then
  cat "$CA" >> /etc/ssl/certs/ca-certificates.crt 2>/dev/null || true
fi
exec sleep infinity
