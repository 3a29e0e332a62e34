// Docker-side vocabulary shared by the components, the CLI, the policy pack and the tests:
// the provider's resource type tokens, the bridge option that keeps the host out of a
// network, and how a running sidecar is asked to reload.

/** Type tokens of the @pulumi/docker resources a bottle declares. */
export const DOCKER_TYPES = {
  container: "docker:index/container:Container",
  network: "docker:index/network:Network",
  image: "docker:index/image:Image",
  remoteImage: "docker:index/remoteImage:RemoteImage",
  volume: "docker:index/volume:Volume",
} as const;

/**
 * The uid of every sidecar that writes the bottle's state volumes or holds a private key uploaded
 * owned by it: "nobody". The state volumes are owned by it (the state image's mount points,
 * copied into each fresh volume). An upload with owner/group makes the docker provider copy with
 * the daemon's CopyUIDGID option, and Docker before 28 then resolves the container's `user` in
 * the HOST's passwd/getent (moby daemon/archive_tarcopyoptions_unix.go), where only a bare uid
 * the host knows works — not "uid:gid", not an image-only uid such as 10001. 65534 is nobody on
 * every Linux Docker host, so it works on a remote engine as on a local one.
 */
export const NOBODY_UID = 65534;

/** Docker's bridge driver option that leaves the bridge without an IPv4 address: members cannot reach the host. */
export const INHIBIT_IPV4 = "com.docker.network.bridge.inhibit_ipv4";

/**
 * How the host asks a running sidecar to reload its config now (the sidecars also watch
 * their config directories, so this only shortens the wait). Not `docker kill --signal
 * HUP`: on Docker 20.10 any `docker kill` marks the container as manually stopped, and a
 * later crash is then no longer restarted under `restart: unless-stopped`.
 */
export function reloadCommand(container: string): string[] {
  return ["exec", container, "sh", "-c", "kill -HUP 1"];
}
