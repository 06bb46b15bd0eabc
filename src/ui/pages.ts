import type { Scope } from '../auth/scopes.ts';

/**
 * The dashboard's pages, in navigation order. One entry and one route file
 * (src/http/routes/ui-<page>.ts) per resource: a new page adds both (a list's contacts live
 * under Lists). `scope` decides who sees the link and who may open the page (403 otherwise).
 */
export interface PageEntry {
  path: string;
  label: string;
  scope: Scope;
}

export const PAGES = {
  overview: { path: '/', label: 'Overview', scope: 'reports.view' },
  jobs: { path: '/ui/jobs', label: 'Send jobs', scope: 'jobs.manage' },
  messages: { path: '/ui/messages', label: 'Messages', scope: 'messages.view' },
  campaigns: { path: '/ui/campaigns', label: 'Campaigns', scope: 'jobs.manage' },
  templates: { path: '/ui/templates', label: 'Templates', scope: 'templates.view' },
  lists: { path: '/ui/lists', label: 'Lists', scope: 'lists.view' },
  domains: { path: '/ui/domains', label: 'Domains', scope: 'domains.manage' },
  suppressions: { path: '/ui/suppressions', label: 'Suppressions', scope: 'suppressions.view' },
  webhooks: { path: '/ui/webhooks', label: 'Webhooks', scope: 'webhooks.manage' },
  keys: { path: '/ui/keys', label: 'API keys', scope: 'keys.manage' },
} as const satisfies Record<string, PageEntry>;

export type PageName = keyof typeof PAGES;
