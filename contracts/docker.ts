// How the host asks a running sidecar to reload its config now (the sidecars also watch
// their config directories, so this only shortens the wait). Not `docker kill --signal
// HUP`: on Docker 20.10 any `docker kill` marks the container as manually stopped, and a
// later crash is then no longer restarted under `restart: unless-stopped`.
export function reloadCommand(container: string): string[] {
  return ["exec", container, "sh", "-c", "kill -HUP 1"];
}
