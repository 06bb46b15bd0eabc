import PgBoss from 'pg-boss';
import type { Db } from '../db/pool.ts';
import { checkDueDomains, type DomainContext } from '../domains/domains.ts';
import { dnsChecker } from '../domains/dns-check.ts';
import { bossScheduler, createSendJobQueues, registerSendJobWorkers, type JobScheduler, type RunnerOptions } from '../jobs/runner.ts';
import type { Logger } from '../log.ts';
import { purgeExpiredIdempotencyKeys } from '../sending/idempotency.ts';

export interface Orchestration {
  scheduler: JobScheduler;
  stop(): Promise<void>;
}

/**
 * Job-level orchestration on pg-boss (its own `pgboss` schema in the same database): send jobs'
 * start, window end and completion, and recurring maintenance. Per-recipient work never goes
 * here (that is the messages table's job). API processes only enqueue; workers also work.
 */
export async function startOrchestration(
  databaseUrl: string,
  db: Db,
  log: Logger,
  options: { worker: boolean; sendJobs: RunnerOptions; domains?: DomainContext },
): Promise<Orchestration> {
  const boss = new PgBoss({
    connectionString: databaseUrl,
    max: 3,
    application_name: 'send-engine-boss',
    supervise: options.worker,
    schedule: options.worker,
  });
  let stopping = false;
  boss.on('stopped', () => (stopping = true));
  // Connections dropping while the database shuts down are expected, not errors.
  boss.on('error', (err) => (stopping ? log.debug : log.error).call(log, { err: err.message }, 'pg-boss error'));
  await boss.start();
  await createSendJobQueues(boss);

  if (options.worker) {
    await registerSendJobWorkers(boss, db, options.sendJobs, log);
    const purge = 'maintenance.idempotency-purge';
    await boss.createQueue(purge);
    // pg-boss keeps one schedule per name however many workers declare it, and runs it once per tick.
    await boss.schedule(purge, '17 * * * *');
    await boss.work(purge, async () => {
      const deleted = await purgeExpiredIdempotencyKeys(db);
      log.info({ deleted }, 'expired idempotency keys purged');
    });
    if (options.domains) await scheduleDomainChecks(boss, db, log, options.domains);
  }
  return {
    scheduler: bossScheduler(boss),
    stop: () => boss.stop({ graceful: true, wait: true, timeout: 10_000 }),
  };
}

/** Sending domains' DNS re-checks: every minute, whatever is due (pending with backoff for 72 h, verified daily). */
async function scheduleDomainChecks(boss: PgBoss, db: Db, log: Logger, domains: DomainContext) {
  const queue = 'domains.verify';
  const checker = dnsChecker(domains.settings.dnsServers);
  await boss.createQueue(queue);
  await boss.schedule(queue, '* * * * *');
  await boss.work(queue, async () => {
    const checked = await checkDueDomains(db, domains, checker);
    if (checked) log.info({ checked }, 'sending domains re-checked');
  });
}
