/**
 * The life of a send job, declared once (mirrored by the CHECK on send_jobs.status, migration 019).
 * A campaign (/v1/campaigns) is a send job seen with its campaign's names: 'pending' is
 * 'scheduled'. The contract's /api/send-jobs knows only pending, running and the ends.
 */
export const SEND_JOB_STATUSES = ['draft', 'pending', 'running', 'paused', 'completed', 'failed', 'cancelled'] as const;
export type SendJobStatus = (typeof SEND_JOB_STATUSES)[number];

export const CAMPAIGN_STATUSES = ['draft', 'scheduled', 'running', 'paused', 'completed', 'cancelled', 'failed'] as const;
export type CampaignStatus = (typeof CAMPAIGN_STATUSES)[number];

export const campaignStatus = (s: SendJobStatus): CampaignStatus => (s === 'pending' ? 'scheduled' : s);

/** The contract's view (/api/send-jobs): a draft is not started yet, a paused job is still under way. */
export type ContractJobStatus = 'pending' | 'running' | 'completed' | 'failed' | 'cancelled';
export const contractStatus = (s: SendJobStatus): ContractJobStatus => (s === 'draft' ? 'pending' : s === 'paused' ? 'running' : s);

/** Statuses in which a job still may send (cancel, fail and the window's end apply to them). */
export const LIVE_STATUSES: readonly SendJobStatus[] = ['draft', 'pending', 'running', 'paused'];
