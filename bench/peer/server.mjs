// The benchmark's reference provider: node-oidc-provider (OpenID-certified), set up
// like Tessera is in the benchmark:
//   - one confidential client (client_secret_basic) allowed client_credentials and
//     authorization_code, redirect URI PEER_REDIRECT_URI;
//   - RS256 JWT access tokens for client_credentials: a request with scope "api:read"
//     is given the resource server BENCH_RESOURCE (RFC 8707 resource indicators),
//     whose access token format is "jwt"; without that scope the token is opaque
//     (oidc-provider introspects only opaque tokens, so the introspection case uses one);
//   - introspection enabled;
//   - a small login and consent interaction (not devInteractions, which accepts any
//     password): one in-memory account whose password is checked with argon2id at the
//     parameters Tessera uses (19 MiB, t=2, p=1 unless ARGON2_* say otherwise). Each
//     form carries a hidden CSRF value (an HMAC of the interaction id), as Tessera's do.
// Everything lives in memory (the library's default adapter). One process.
//
// Environment: PEER_PORT (3100), PEER_HOST (127.0.0.1), PEER_CLIENT_ID,
// PEER_CLIENT_SECRET, PEER_REDIRECT_URI, PEER_USERNAME, PEER_PASSWORD,
// ARGON2_MEMORY_KIB, ARGON2_TIME_COST, ARGON2_PARALLELISM.
// On start it prints one JSON line describing itself, then "listening".

import crypto from 'node:crypto';
import http from 'node:http';
import { createRequire } from 'node:module';

import Provider from 'oidc-provider';

const require = createRequire(import.meta.url);
const env = (name, fallback) => process.env[name] || fallback;

const HOST = env('PEER_HOST', '127.0.0.1');
const PORT = Number(env('PEER_PORT', '3100'));
const ISSUER = `http://${HOST}:${PORT}`;
const CLIENT_ID = env('PEER_CLIENT_ID', 'bench-client');
const CLIENT_SECRET = env('PEER_CLIENT_SECRET', 'bench-secret-that-is-long-enough-0123456789');
const REDIRECT_URI = env('PEER_REDIRECT_URI', 'http://127.0.0.1:5199/cb');
const USERNAME = env('PEER_USERNAME', 'benchuser');
const PASSWORD = env('PEER_PASSWORD', 'correct horse battery staple');
const RESOURCE = env('BENCH_RESOURCE', 'urn:tessera-bench:api');
const API_SCOPE = 'api:read';
const ARGON2 = {
  memoryCost: Number(env('ARGON2_MEMORY_KIB', '19456')),
  timeCost: Number(env('ARGON2_TIME_COST', '2')),
  parallelism: Number(env('ARGON2_PARALLELISM', '1')),
};

// argon2 (native, on libuv's thread pool). Without it the check would be free, which
// would make the sign-in comparison meaningless: refuse to start instead.
const argon2 = require('argon2');
const passwordHash = await argon2.hash(PASSWORD, { type: argon2.argon2id, ...ARGON2 });

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256' };
const formSecret = crypto.randomBytes(32);

const account = {
  accountId: crypto.randomUUID(),
  username: USERNAME,
  claims: {
    name: 'Bench User',
    given_name: 'Bench',
    family_name: 'User',
    email: `${USERNAME}@example.com`,
    email_verified: true,
  },
};

const configuration = {
  clients: [
    {
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code', 'client_credentials'],
      response_types: ['code'],
      redirect_uris: [REDIRECT_URI],
      scope: `openid profile email ${API_SCOPE}`,
    },
  ],
  jwks: { keys: [signingJwk] },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  scopes: ['openid', 'offline_access', 'profile', 'email', API_SCOPE],
  claims: {
    openid: ['sub'],
    profile: ['name', 'given_name', 'family_name'],
    email: ['email', 'email_verified'],
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      // As in Tessera: a client may introspect only the tokens issued to it.
      allowedPolicy: (ctx, client, token) => token.clientId === client.clientId,
    },
    resourceIndicators: {
      enabled: true,
      // The API scope selects the API as the audience, and so a JWT access token.
      defaultResource(ctx, client, oneOf) {
        if (oneOf) return oneOf;
        const scope = String(ctx.oidc.params?.scope || '').split(' ');
        return scope.includes(API_SCOPE) ? RESOURCE : undefined;
      },
      useGrantedResource: () => false,
      getResourceServerInfo(ctx, indicator) {
        if (indicator !== RESOURCE) throw new Provider.errors.InvalidTarget();
        return {
          scope: API_SCOPE,
          audience: RESOURCE,
          accessTokenTTL: 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  findAccount(ctx, sub) {
    if (sub !== account.accountId) return undefined;
    return { accountId: sub, claims: () => ({ sub, ...account.claims }) };
  },
  // Tessera's defaults: 10 minutes for tokens, 60 s for codes, a day for sessions.
  ttl: {
    AccessToken: 600,
    ClientCredentials: 600,
    IdToken: 600,
    AuthorizationCode: 60,
    Interaction: 600,
    Session: 86400,
    Grant: 86400,
  },
};

const provider = new Provider(ISSUER, configuration);
provider.on('server_error', (ctx, err) => console.error('server_error', err));
const oidc = provider.callback();

// ---- the interaction pages: login, then consent ------------------------------------

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const csrfFor = (uid) => crypto.createHmac('sha256', formSecret).update(uid).digest('base64url');

function page(res, status, title, body) {
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title></head>`
    + `<body><h1>${esc(title)}</h1>${body}</body></html>`;
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Length': Buffer.byteLength(html),
  });
  res.end(html);
}

function loginForm(uid, error) {
  return `${error ? `<p role="alert">${esc(error)}</p>` : ''}`
    + `<form method="post" action="/interaction/${esc(uid)}/login">`
    + `<input type="hidden" name="csrf" value="${csrfFor(uid)}">`
    + '<label>Username <input name="login" autocomplete="username" required></label>'
    + '<label>Password <input type="password" name="password" required></label>'
    + '<button type="submit">Sign in</button></form>';
}

function consentForm(uid, client, scopes) {
  return `<p>${esc(client.clientName || client.clientId)} asks for: ${esc(scopes.join(' '))}</p>`
    + `<form method="post" action="/interaction/${esc(uid)}/confirm">`
    + `<input type="hidden" name="csrf" value="${csrfFor(uid)}">`
    + '<button type="submit" name="decision" value="allow">Allow</button>'
    + '<button type="submit" name="decision" value="deny">Deny</button></form>';
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 16384) throw new Error('body too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function csrfOk(uid, form) {
  const got = Buffer.from(form.get('csrf') || '');
  const want = Buffer.from(csrfFor(uid));
  return got.length === want.length && crypto.timingSafeEqual(got, want);
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return page(res, 400, 'Error', '<p>Unknown interaction.</p>');
  const { prompt, params, session } = details;

  if (req.method === 'GET' && !action) {
    if (prompt.name === 'login') return page(res, 200, 'Sign in', loginForm(uid));
    const client = await provider.Client.find(params.client_id);
    return page(res, 200, 'Allow access', consentForm(uid, client, String(params.scope).split(' ')));
  }
  if (req.method !== 'POST') return page(res, 405, 'Error', '<p>Method not allowed.</p>');
  const form = await readForm(req);
  if (!csrfOk(uid, form)) return page(res, 400, 'Error', '<p>The form expired.</p>');

  if (action === 'login' && prompt.name === 'login') {
    const ok = form.get('login') === account.username
      && (await argon2.verify(passwordHash, form.get('password') || ''));
    if (!ok) return page(res, 401, 'Sign in', loginForm(uid, 'The username or password is incorrect.'));
    return provider.interactionFinished(
      req,
      res,
      { login: { accountId: account.accountId } },
      { mergeWithLastSubmission: false },
    );
  }
  if (action === 'confirm' && prompt.name === 'consent') {
    if (form.get('decision') !== 'allow') {
      return provider.interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'The user denied the request.' },
        { mergeWithLastSubmission: false },
      );
    }
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const missing = prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    if (missing.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    const grantId = await grant.save();
    return provider.interactionFinished(
      req,
      res,
      { consent: { grantId } },
      { mergeWithLastSubmission: true },
    );
  }
  return page(res, 400, 'Error', '<p>Unexpected step.</p>');
}

const INTERACTION = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|confirm))?$/;

const server = http.createServer((req, res) => {
  const match = INTERACTION.exec(req.url.split('?', 1)[0]);
  if (!match) return oidc(req, res);
  return interaction(req, res, match[1], match[2]).catch((err) => {
    if (!res.headersSent) page(res, 400, 'Error', `<p>${esc(err.message || err)}</p>`);
    else res.end();
  });
});
server.keepAliveTimeout = 65000;

server.listen(PORT, HOST, () => {
  let version = 'unknown';
  try {
    version = require('oidc-provider/package.json').version;
  } catch {
    // exports may hide package.json; the runner reads the version from disk instead
  }
  console.log(JSON.stringify({
    peer: 'oidc-provider',
    version,
    node: process.version,
    issuer: ISSUER,
    client_id: CLIENT_ID,
    argon2: ARGON2,
    resource: RESOURCE,
  }));
  console.log('listening');
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
