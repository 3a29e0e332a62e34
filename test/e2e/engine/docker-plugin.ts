// Entry point of the docker provider plugin double (plugins/docker/pulumi-resource-docker).
import { dockerDoubles, dockerProviderConfig } from "./docker.ts";
import { providerOf, servePlugin } from "./plugin.ts";
import { sdkPluginVersion } from "./versions.ts";

servePlugin(providerOf("docker", sdkPluginVersion("docker"), dockerDoubles), { pkg: "docker", double: dockerProviderConfig });
