// A stand-in for the Node.js original's job, written for this benchmark: one CRM lookup and one
// Genesys write per event with Node's built-in fetch, a cached client-credentials token, the same
// environment variables. No retries, no validation: what the original's handler does on the
// happy path. PERF_CRM_URLS, when set, names several CRMs, asked together.

const FIELDS = ["crmAccountId", "lifetimeValue", "loyaltyTier", "lastPurchaseDate"];
const env = process.env;
const crmUrls = (env.PERF_CRM_URLS || env.CRM_API_BASE_URL).split(",");
let token = null;

async function accessToken() {
  if (token && Date.now() < token.until) return token.value;
  const basic = Buffer.from(`${env.GENESYS_CLIENT_ID}:${env.GENESYS_CLIENT_SECRET}`).toString("base64");
  const response = await fetch(`${env.GENESYS_LOGIN_URL}/oauth/token`, {
    method: "POST",
    headers: { Authorization: `Basic ${basic}`, "Content-Type": "application/x-www-form-urlencoded" },
    body: "grant_type=client_credentials",
  });
  if (!response.ok) throw new Error(`token: HTTP ${response.status}`);
  const body = await response.json();
  token = { value: body.access_token, until: Date.now() + (body.expires_in * 1000) / 2 };
  return token.value;
}

async function lookup(base, customerId) {
  const response = await fetch(`${base}/customers/${encodeURIComponent(customerId)}`, {
    headers: { Authorization: `Bearer ${env.CRM_API_KEY}`, Accept: "application/json" },
  });
  if (!response.ok) throw new Error(`CRM: HTTP ${response.status}`);
  return response.json();
}

export async function handler(event) {
  const { interactionId, externalCustomerId } = event.detail;
  const records = await Promise.all(crmUrls.map((base) => lookup(base, externalCustomerId)));
  const record = Object.assign({}, ...records.reverse());
  const context = {};
  for (const name of FIELDS) if (name in record) context[name] = record[name];
  const response = await fetch(`${env.GENESYS_API_URL}/api/v2/interactions/${encodeURIComponent(interactionId)}`, {
    method: "PATCH",
    headers: { Authorization: `Bearer ${await accessToken()}`, "Content-Type": "application/json" },
    body: JSON.stringify({ context }),
  });
  if (!response.ok) throw new Error(`write: HTTP ${response.status}`);
  await response.arrayBuffer();
  return { status: "enriched", fields: Object.keys(context).length };
}
