/** A domain's and each DNS record's state (useSend's vocabulary); mirrored by sending_domains' CHECK. */
export const DOMAIN_STATUSES = ['not_started', 'pending', 'verified', 'failed', 'temporary_failure'] as const;
export type DomainStatus = (typeof DOMAIN_STATUSES)[number];

/** A DKIM key's role; mirrored by domain_dkim_keys' CHECK. */
export const DKIM_KEY_STATES = ['active', 'next'] as const;
export type DkimKeyState = (typeof DKIM_KEY_STATES)[number];

export const RECORD_PURPOSES = ['dkim', 'spf', 'dmarc', 'return_path', 'tracking'] as const;
export type RecordPurpose = (typeof RECORD_PURPOSES)[number];
