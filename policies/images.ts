// Supply chain of the sidecar images: a build may start only from a base pinned by digest (or a
// local hermetic test image), and a pulled image must be pinned by digest. Advisory: air-gapped and
// development setups may knowingly build from a tag.
import type { ResourceValidationPolicy } from "@pulumi/policy";
import { known, TYPES, who } from "./resources.ts";

/** Local hermetic test images (test/e2e/images/build.ts) are content-addressed by their tag. */
export const LOCAL_TEST_IMAGE_RE = /^cbtest\/[a-z0-9._/-]+:[A-Za-z0-9._-]+$/;

export function isPinnedImage(ref: string): boolean {
  const r = ref.trim();
  return /@sha256:[0-9a-f]{64}$/.test(r) || /^sha256:[0-9a-f]{64}$/.test(r) || LOCAL_TEST_IMAGE_RE.test(r);
}

export const sidecarImagesPinned: ResourceValidationPolicy = {
  name: "sidecar-images-pinned",
  description: "Sidecar images must be built from base images pinned by digest (build args *_IMAGE) or be pulled by digest; local hermetic test images are accepted.",
  enforcementLevel: "advisory",
  severity: "medium",
  validateResource: (args, report) => {
    const p = args.props;
    if (args.type === TYPES.image) {
      const buildArgs = known(() => p.build?.args) ?? {};
      for (const key of Object.keys(buildArgs)) {
        if (!/_IMAGE$/.test(key)) continue;
        const ref = known(() => buildArgs[key]);
        if (typeof ref === "string" && !isPinnedImage(ref)) report(`The image ${who(args.name)} must build from ${key} pinned by digest (name@sha256:…), not a tag.`);
      }
      return;
    }
    if (args.type === TYPES.remoteImage) {
      const ref = known(() => p.name);
      if (typeof ref === "string" && !isPinnedImage(ref)) report(`The image ${who(args.name)} must be pulled by digest (name@sha256:…), not a tag.`);
      return;
    }
    args.notApplicable("Policy only applies to docker Image and RemoteImage resources.");
  },
};

export const imagePolicies = [sidecarImagesPinned];
