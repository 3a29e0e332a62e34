// A minimal ustar writer: enough to hand `docker cp - ctr:/` files with exact mode/uid/gid.
// Only regular files: docker creates missing parent directories (root, 0755) itself, and we
// must not chmod/chown directories that already exist in the image.

export interface TarFile {
  /** Absolute path inside the container. */
  path: string;
  content: Buffer | string;
  mode: number;
  uid: number;
  gid: number;
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, "0") + "\0";
}

function header(name: string, size: number, f: TarFile): Buffer {
  const h = Buffer.alloc(512, 0);
  let prefix = "";
  let base = name;
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf("/", 154);
    if (cut <= 0 || Buffer.byteLength(name.slice(cut + 1)) > 100) throw new Error(`tar: path too long for ustar: ${name}`);
    prefix = name.slice(0, cut);
    base = name.slice(cut + 1);
  }
  h.write(base, 0, 100, "utf8");
  h.write(octal(f.mode & 0o7777, 8), 100, 8, "ascii");
  h.write(octal(f.uid, 8), 108, 8, "ascii");
  h.write(octal(f.gid, 8), 116, 8, "ascii");
  h.write(octal(size, 12), 124, 12, "ascii");
  h.write(octal(Math.floor(Date.now() / 1000), 12), 136, 12, "ascii");
  h.write("        ", 148, 8, "ascii"); // checksum placeholder
  h.write("0", 156, 1, "ascii"); // regular file
  h.write("ustar\u000000", 257, 8, "ascii");
  h.write(prefix, 345, 155, "utf8");
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, 8, "ascii");
  return h;
}

export function tarFiles(files: TarFile[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of files) {
    if (!f.path.startsWith("/")) throw new Error(`tar: upload path must be absolute: ${f.path}`);
    const data = Buffer.isBuffer(f.content) ? f.content : Buffer.from(f.content, "utf8");
    parts.push(header(f.path.replace(/^\/+/, ""), data.length, f));
    parts.push(data);
    const pad = (512 - (data.length % 512)) % 512;
    if (pad) parts.push(Buffer.alloc(pad, 0));
  }
  parts.push(Buffer.alloc(1024, 0));
  return Buffer.concat(parts);
}
