// Entry point of the tls provider plugin double (plugins/tls/pulumi-resource-tls).
import { providerOf, servePlugin } from "./plugin.ts";
import { sdkPluginVersion } from "./versions.ts";
import { tlsDoubles } from "./tls.ts";

servePlugin(providerOf("tls", sdkPluginVersion("tls"), tlsDoubles));
