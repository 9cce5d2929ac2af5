// Offline after the first visit: every same-origin GET goes to the network first and is kept;
// when the network is gone the kept copy answers. Weights are cached by the worker itself.
const CACHE = 'unforge-site-v1';

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));

self.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  // Weights are the worker's to cache (keyed by their manifest); never twice.
  if (req.method !== 'GET' || url.origin !== self.location.origin || url.pathname.endsWith('.safetensors')) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    try {
      const res = await fetch(req);
      // Kept alongside, not before: the page reads the body as it arrives (the core's progress).
      if (res.ok) event.waitUntil(cache.put(req, res.clone()));
      return res;
    } catch (err) {
      const kept = await cache.match(req);
      if (kept) return kept;
      throw err;
    }
  })());
});
