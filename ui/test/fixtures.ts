// Test data shaped like the Rust `Connection` (optional fields omitted, as serde
// skips `None`s — the UI must cope with absent as well as null).
import type { Client } from '../src/bindings/Client';
import type { Connection } from '../src/bindings/Connection';

export const NOW = Date.parse('2025-03-01T12:00:00.000Z');

export const iso = (ms: number): string => new Date(ms).toISOString();

let seq = 0;
export function conn(over: Partial<Connection> & { id?: string } = {}): Connection {
  seq += 1;
  const base = {
    id: `c${seq}`,
    client_id: 'client-fa',
    client_name: 'Office FA',
    provider: 'flowaccount',
    environment: 'sandbox',
    label: `Business ${seq}`,
    support_code: `SC${seq}`,
    access_expires: { at: iso(NOW + 3600_000), source: 'relative_seconds' },
    refresh_expires: { at: iso(NOW + 86_400_000), source: 'estimated' },
    state: 'active',
    keep_fresh: false,
    created_at: iso(NOW - 1000),
    updated_at: iso(NOW - 1000),
    secret_generation: 1,
  };
  return { ...base, ...over } as unknown as Connection;
}

export function client(over: Partial<Client> = {}): Client {
  return {
    id: 'client-fa',
    name: 'Office FA',
    provider: 'flowaccount',
    environment: 'sandbox',
    client_id: 'fa-app-id',
    endpoints: {
      authorize_url: 'https://sandbox-auth.flowaccount.com/connect/authorize',
      token_url: 'https://openapi.flowaccount.com/test/token',
    },
    options: { pkce: false, iot_basic_auth: 'raw', iot_body: 'form' },
    has_secret: true,
    created_at: iso(NOW - 10_000),
    ...over,
  } as unknown as Client;
}

/** Count text writes under `root` (characterData + childList mutations) while `fn` runs. */
export async function countWrites(root: Node, fn: () => void | Promise<void>): Promise<MutationRecord[]> {
  const records: MutationRecord[] = [];
  const mo = new MutationObserver((r) => records.push(...r));
  mo.observe(root, { characterData: true, childList: true, subtree: true, attributes: true });
  await fn();
  records.push(...mo.takeRecords());
  mo.disconnect();
  return records;
}
