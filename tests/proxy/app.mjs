// The protected "app" behind the proxies: it shows the identity headers it receives, and keeps
// a log of every request (path and X-Tessera-* headers) that the test reads directly on its
// own port at /__requests (not through a proxy).
//
//   node app.mjs            prints the port it listens on (127.0.0.1, chosen by the system)

import { createServer } from 'node:http';

const IDENTITY = ['x-tessera-user', 'x-tessera-email', 'x-tessera-groups'];
const seen = [];

function escape(text) {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const server = createServer((req, res) => {
  const direct = req.headers['x-test-direct'] === '1';
  if (direct && req.url === '/__requests') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(seen));
    return;
  }
  const identity = {};
  for (const name of IDENTITY) if (name in req.headers) identity[name] = req.headers[name];
  seen.push({ method: req.method, url: req.url, identity });
  if (req.url === '/favicon.ico') {
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('no icon');
    return;
  }
  const rows = IDENTITY.map((name) => {
    const shown = name in req.headers ? JSON.stringify(req.headers[name]) : '(absent)';
    return `<dt>${name}</dt><dd id="${name}">${escape(shown)}</dd>`;
  }).join('');
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(
    `<!doctype html><html lang="en"><title>Protected app</title>` +
      `<h1 id="app">Protected app</h1><p id="url">${escape(req.url)}</p><dl>${rows}</dl></html>`,
  );
});

server.listen(0, '127.0.0.1', () => {
  console.log(server.address().port);
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
