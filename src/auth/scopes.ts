/** Scopes a credential can carry; routes name the one they need. */
export const SCOPES = {
  send: 'Submit transactional and newsletter sends (POST /v1/send-jobs)',
  'jobs.manage': 'Create, read and cancel list send jobs (/api/send-jobs) and campaigns (/v1/campaigns)',
  'lists.view': 'Read lists and their sync state, contacts and imports',
  'lists.manage': 'Unsubscribe list members (an engine opt-out, sent to the Member Center); create lists the API owns, write and import their contacts',
  'messages.view': 'Read messages and their event timelines',
  'analytics.search.recipients': 'Search messages by recipient address and see unmasked addresses',
  'reports.view': 'Read deliverability and engagement reports',
  'suppressions.view': 'Read the suppression list',
  'suppressions.manage': 'Add and remove suppressions',
  'undeliverable.view': 'Read undeliverable recipients',
  'org.view': 'Read the account snapshot',
  'domains.manage': 'Add, verify, rotate and remove sending domains; set the default sender (/v1/domains, PATCH /v1/account)',
  'identities.view': 'Read sending identities (/v1/identities)',
  'tracking.view': 'Read tracking domains (/v1/tracking-domains)',
  'webhooks.manage': 'Register and manage outbound webhook endpoints, see and retry their deliveries',
  'templates.manage': 'Create, update, delete and test-send stored templates (/v1/templates)',
  'templates.view': 'Read and preview-render stored templates',
  'send:sms': 'Send SMS and request sender IDs (/v1/sms/send, /v1/sms/sender-id-requests)',
  'read:sms': 'Read SMS messages, their timelines and approved sender IDs',
  'send:whatsapp': 'Send WhatsApp messages and set the account\'s WhatsApp Cloud line',
  'read:whatsapp': 'Read WhatsApp messages, their timelines and the WhatsApp Cloud line',
  'keys.manage': "Create, rotate and revoke the tenant's API keys in the dashboard (a key grants at most its own scopes)",
} as const;

export type Scope = keyof typeof SCOPES;

/**
 * What `tenant create` grants: sending, reading, its own sending domains and webhook endpoints; not
 * suppression management, list writes or recipient search.
 */
export const DEFAULT_SCOPES: Scope[] = [
  'send', 'jobs.manage', 'lists.view', 'messages.view', 'reports.view', 'suppressions.view', 'undeliverable.view', 'org.view',
  'domains.manage', 'identities.view', 'tracking.view', 'webhooks.manage',
  'templates.manage', 'templates.view',
  'send:sms', 'read:sms', 'send:whatsapp', 'read:whatsapp',
];

export function parseScopes(input: string): Scope[] {
  const scopes = input.split(/[,\s]+/).filter(Boolean);
  const unknown = scopes.filter((s) => !(s in SCOPES));
  if (unknown.length) throw new Error(`unknown scope(s): ${unknown.join(', ')}; known: ${Object.keys(SCOPES).join(', ')}`);
  return scopes as Scope[];
}
