// Entry point the Pulumi CLI loads (package.json "main"). Its Node policy runner require()s the pack
// and registers ts-node (CommonJS only), which cannot load this ESM TypeScript pack; so this file
// registers tsx's ESM loader (tsx/esm/api, needs Node >= 20.6) and then imports index.ts. The runner
// awaits the exported promise, so a load error fails the policy run loudly.
module.exports = import("tsx/esm/api").then(({ register }) => {
  register();
  return import("./index.ts");
});
