// Writes the nginx and Caddy configurations of the proxy test, taken from docs/proxy.md as
// written, with only the documented "local trial over plain HTTP" changes and the ports of
// this run applied. Every change must match the documented text exactly once, so a recipe
// edited in the docs is either tested as edited or fails here, loudly.
//
//   node configs.mjs nginx <dir> <proxy-port> <tessera-port> <app-port>
//   node configs.mjs nginx-rd <dir> …   (the same with the documented alternative @login)
//   node configs.mjs caddy <dir> <proxy-port> <tessera-port> <app-port>

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const DOC = new URL('../../docs/proxy.md', import.meta.url);

/** The fenced code blocks of `lang` in the section under the `## <heading>` line. */
function blocks(markdown, heading, lang) {
  const start = markdown.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`docs/proxy.md has no "## ${heading}" section`);
  const next = markdown.indexOf('\n## ', start + 1);
  const section = markdown.slice(start, next < 0 ? undefined : next);
  const found = [];
  const fence = new RegExp('^```' + lang + '\\n([\\s\\S]*?)^```', 'gm');
  for (const m of section.matchAll(fence)) found.push(m[1]);
  return found;
}

/** The fenced blocks of `lang` nested in list items (indented fences), dedented. */
function indentedBlocks(markdown, heading, lang) {
  const start = markdown.indexOf(`\n## ${heading}\n`);
  const next = markdown.indexOf('\n## ', start + 1);
  const section = markdown.slice(start, next < 0 ? undefined : next);
  const found = [];
  const fence = new RegExp('^( +)```' + lang + '\\n([\\s\\S]*?)^\\1```', 'gm');
  for (const m of section.matchAll(fence)) {
    const pad = m[1].length;
    found.push(m[2].split('\n').map((l) => l.slice(Math.min(pad, l.length - l.trimStart().length))).join('\n'));
  }
  return found;
}

/** `text` with `from` replaced by `to`, which must occur exactly `times` times. */
function change(text, from, to, times = 1) {
  const n = text.split(from).length - 1;
  if (n !== times) throw new Error(`expected ${times} × ${JSON.stringify(from)} in the documented config, found ${n}`);
  return text.split(from).join(to);
}

/** `text` without the lines matching `re` (at least one). */
function drop(text, re) {
  const lines = text.split('\n');
  const kept = lines.filter((l) => !re.test(l));
  if (kept.length === lines.length) throw new Error(`no line matches ${re} in the documented config`);
  return kept.join('\n');
}

const [kind, dir, proxyPort, tesseraPort, appPort] = process.argv.slice(2);
if (!kind || !dir || !proxyPort || !tesseraPort || !appPort) {
  console.error('usage: node configs.mjs nginx|caddy <dir> <proxy-port> <tessera-port> <app-port>');
  process.exit(2);
}
const doc = readFileSync(DOC, 'utf8');
mkdirSync(dir, { recursive: true });
const origin = `http://127.0.0.1:${proxyPort}`;

if (kind === 'nginx' || kind === 'nginx-rd') {
  const all = blocks(doc, 'nginx', 'nginx');
  const shared = all.find((b) => b.startsWith('proxy_pass http://tessera;'));
  const site = all.find((b) => b.includes('server {'));
  if (!shared || !site) throw new Error('docs/proxy.md: the nginx section lost tessera_proxy.conf or the site');
  let s = site;
  // The documented local changes ("A local trial over plain HTTP"), on this run's port.
  s = change(s, 'listen 443 ssl http2;', `listen 127.0.0.1:${proxyPort};`);
  s = drop(s, /^\s*ssl_certificate(_key)?\s/);
  s = change(s, 'server_name auth.example.com;', 'server_name localhost;');
  s = change(s, 'https://auth.example.com/login', `${origin}/login`);
  if (kind === 'nginx-rd') {
    // The documented alternative: tessera builds (and percent-encodes) the sign-in redirect.
    const alt = indentedBlocks(doc, 'nginx', 'nginx').find((b) => b.startsWith('location @login {'));
    if (!alt) throw new Error('docs/proxy.md: the alternative `location @login` is gone');
    const current = s.match(/^( *)location @login \{\n[\s\S]*?^\1\}\n/m);
    if (!current) throw new Error('docs/proxy.md: the site has no `location @login` block');
    const indent = current[1];
    s = s.replace(current[0], alt.split('\n').map((l) => (l ? indent + l : l)).join('\n'));
  }
  // This run's ports for tessera and the app.
  s = change(s, 'server 127.0.0.1:8080;', `server 127.0.0.1:${tesseraPort};`);
  s = change(s, 'server 127.0.0.1:3000;', `server 127.0.0.1:${appPort};`);
  writeFileSync(join(dir, 'tessera_proxy.conf'), shared);
  writeFileSync(join(dir, 'site.conf'), s);
  // What Debian's /etc/nginx/nginx.conf provides around a site, for a private instance.
  const temp = (name) => `${name}_temp_path ${join(dir, 'tmp', name)};`;
  for (const name of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, 'tmp', name), { recursive: true });
  writeFileSync(
    join(dir, 'nginx.conf'),
    [
      'daemon off;',
      'worker_processes 1;',
      `pid ${join(dir, 'nginx.pid')};`,
      `error_log ${join(dir, 'error.log')} notice;`,
      'events { worker_connections 64; }',
      'http {',
      `    access_log ${join(dir, 'access.log')};`,
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((n) => `    ${temp(n)}`),
      '    include site.conf;',
      '}',
      '',
    ].join('\n'),
  );
} else if (kind === 'caddy') {
  const all = blocks(doc, 'Caddy', 'caddyfile');
  if (all.length !== 1) throw new Error(`docs/proxy.md: expected one Caddyfile in the Caddy section, found ${all.length}`);
  let s = all[0];
  // Plain HTTP on this run's port: an http:// site address turns automatic HTTPS off.
  s = change(s, 'auth.example.com {', `http://127.0.0.1:${proxyPort} {\n\tlog {\n\t\toutput file ${join(dir, 'access.log')}\n\t}`);
  s = change(s, '127.0.0.1:8080', `127.0.0.1:${tesseraPort}`, 2);
  s = change(s, '127.0.0.1:3000', `127.0.0.1:${appPort}`);
  // A private instance: no admin endpoint, nothing saved outside this directory.
  const global = '{\n\tadmin off\n}\n\n';
  writeFileSync(join(dir, 'Caddyfile'), global + s);
} else {
  console.error(`unknown kind ${kind}`);
  process.exit(2);
}
