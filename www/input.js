// Getting an image into the page: files (picker, drop, paste), the webcam, and the checks
// that come before any full decode. Nothing here sends anything anywhere.

export const MAX_BYTES = 30 * 1024 * 1024;
export const MAX_PIXELS = 25_000_000;

const u32be = (b, o) => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
const u16be = (b, o) => (b[o] << 8) | b[o + 1];
const u16le = (b, o) => b[o] | (b[o + 1] << 8);
const u24le = (b, o) => b[o] | (b[o + 1] << 8) | (b[o + 2] << 16);

// Format and size from the first bytes of a file (PNG, JPEG, GIF, WebP, BMP), or null.
export function sniff(bytes) {
  const b = bytes;
  if (b.length >= 24 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) {
    return { format: 'PNG', width: u32be(b, 16), height: u32be(b, 20) };
  }
  if (b.length >= 10 && b[0] === 0x47 && b[1] === 0x49 && b[2] === 0x46) {
    return { format: 'GIF', width: u16le(b, 6), height: u16le(b, 8) };
  }
  if (b.length >= 26 && b[0] === 0x42 && b[1] === 0x4d) {
    return { format: 'BMP', width: Math.abs(new DataView(b.buffer, b.byteOffset).getInt32(18, true)), height: Math.abs(new DataView(b.buffer, b.byteOffset).getInt32(22, true)) };
  }
  if (b.length >= 30 && b[0] === 0x52 && b[1] === 0x49 && b[2] === 0x46 && b[3] === 0x46 && b[8] === 0x57 && b[9] === 0x45 && b[10] === 0x42 && b[11] === 0x50) {
    const chunk = String.fromCharCode(b[12], b[13], b[14], b[15]);
    if (chunk === 'VP8X') return { format: 'WebP', width: u24le(b, 24) + 1, height: u24le(b, 27) + 1 };
    if (chunk === 'VP8 ') return { format: 'WebP', width: u16le(b, 26) & 0x3fff, height: u16le(b, 28) & 0x3fff };
    if (chunk === 'VP8L') {
      const bits = b[21] | (b[22] << 8) | (b[23] << 16) | (b[24] << 24);
      return { format: 'WebP', width: (bits & 0x3fff) + 1, height: ((bits >> 14) & 0x3fff) + 1 };
    }
    return { format: 'WebP', width: 0, height: 0 };
  }
  if (b.length >= 4 && b[0] === 0xff && b[1] === 0xd8) {
    // Walk the markers to the first start-of-frame.
    let o = 2;
    while (o + 9 < b.length) {
      if (b[o] !== 0xff) return { format: 'JPEG', width: 0, height: 0 };
      const marker = b[o + 1];
      const len = u16be(b, o + 2);
      if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
        return { format: 'JPEG', width: u16be(b, o + 7), height: u16be(b, o + 5) };
      }
      o += 2 + len;
    }
    return { format: 'JPEG', width: 0, height: 0 };
  }
  return null;
}

// Formats the picker offers that the page cannot take as they are, recognised by their bytes
// or their name, with what to do instead.
function unsupported(head, name) {
  const text = new TextDecoder().decode(head.subarray(0, 512)).trimStart().toLowerCase();
  if (text.startsWith('<svg') || (text.startsWith('<?xml') && text.includes('<svg')) || /\.svgz?$/i.test(name)) {
    return `${name}: an SVG is a vector drawing, not a photograph of a face; export it as PNG or JPEG first`;
  }
  return null;
}

// HEIC / HEIF (what phones save): an ISO-BMFF `ftyp` box with a HEIF brand.
function isHeic(head) {
  if (head.length < 12 || String.fromCharCode(...head.subarray(4, 8)) !== 'ftyp') return false;
  return ['heic', 'heix', 'hevc', 'heim', 'heis', 'mif1', 'msf1'].includes(String.fromCharCode(...head.subarray(8, 12)));
}

// Checks a file before decoding it; throws an Error whose message names the file and the
// problem.
export async function checkFile(file) {
  const name = file.name || 'pasted image';
  if (file.size > MAX_BYTES) throw new Error(`${name}: ${(file.size / 1048576).toFixed(1)} MB is over the ${MAX_BYTES / 1048576} MB limit`);
  if (file.size === 0) throw new Error(`${name}: the file is empty`);
  const head = new Uint8Array(await file.slice(0, 65536).arrayBuffer());
  const refused = unsupported(head, name);
  if (refused) throw new Error(refused);
  // HEIC has no size in its first bytes that is cheap to read: the browser decodes it where it
  // can, and the decoded size is checked then.
  if (isHeic(head)) return { format: 'HEIC', width: 0, height: 0 };
  const info = sniff(head);
  if (!info) throw new Error(`${name}: not an image (PNG, JPEG, GIF, WebP, BMP or HEIC)`);
  if (info.width * info.height > MAX_PIXELS) {
    throw new Error(`${name}: ${info.width}×${info.height} is over the ${MAX_PIXELS / 1e6} megapixel limit`);
  }
  return info;
}

// Decodes a checked file to an ImageBitmap; a corrupt file is an error that says so.
export async function decodeFile(file) {
  const info = await checkFile(file);
  const name = file.name || 'pasted image';
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    if (info.format === 'HEIC') {
      throw new Error(`${name}: this browser cannot decode HEIC photos; convert it to JPEG or PNG first (on an iPhone: Settings → Camera → Formats → Most Compatible)`);
    }
    throw new Error(`${name}: the ${info.format} data is corrupt or truncated`);
  }
  if (bitmap.width * bitmap.height > MAX_PIXELS) {
    bitmap.close();
    throw new Error(`${name}: ${bitmap.width}×${bitmap.height} is over the ${MAX_PIXELS / 1e6} megapixel limit`);
  }
  return bitmap;
}

// Starts the webcam into `video`; resolves with a function that stops it.
export async function startCamera(video) {
  if (!navigator.mediaDevices?.getUserMedia) throw new Error('this browser has no camera access');
  const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'user' }, audio: false });
  video.srcObject = stream;
  await video.play();
  return () => stream.getTracks().forEach((t) => t.stop());
}

// The current video frame as an ImageBitmap.
export function grabFrame(video) {
  return createImageBitmap(video);
}
