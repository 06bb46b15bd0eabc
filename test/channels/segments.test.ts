import { describe, expect, it } from 'vitest';
import { countSegments } from '../../src/channels/sms/segments.ts';
import { STATE_OF_STATUS, statusesOfState } from '../../src/channels/types.ts';
import { MESSAGE_STATUSES } from '../../src/outbox/status.ts';

describe('SMS segments', () => {
  it('GSM-7: 160 septets in one segment, 153 per concatenated segment', () => {
    expect(countSegments('a'.repeat(160))).toEqual({ encoding: 'GSM-7', units: 160, segments: 1 });
    expect(countSegments('a'.repeat(161))).toEqual({ encoding: 'GSM-7', units: 161, segments: 2 });
    expect(countSegments('a'.repeat(306)).segments).toBe(2);
    expect(countSegments('a'.repeat(307)).segments).toBe(3);
  });

  it('extension characters (€, [, ]) count two septets and stay GSM-7', () => {
    expect(countSegments('€'.repeat(80))).toEqual({ encoding: 'GSM-7', units: 160, segments: 1 });
    expect(countSegments(`${'€'.repeat(80)}a`)).toEqual({ encoding: 'GSM-7', units: 161, segments: 2 });
    expect(countSegments('Prix: 5€ [promo] à Noël? Ñ ß').encoding).toBe('UCS-2'); // ë is not GSM-7
    expect(countSegments('Prix: 5€ [promo] à Ñ ß').encoding).toBe('GSM-7');
  });

  it('anything else is UCS-2: 70 code units in one segment, 67 per concatenated one; an emoji is two units', () => {
    expect(countSegments('Ж'.repeat(70))).toEqual({ encoding: 'UCS-2', units: 70, segments: 1 });
    expect(countSegments('Ж'.repeat(71))).toEqual({ encoding: 'UCS-2', units: 71, segments: 2 });
    expect(countSegments('😀'.repeat(35))).toEqual({ encoding: 'UCS-2', units: 70, segments: 1 });
    expect(countSegments('😀'.repeat(36)).segments).toBe(2);
    expect(countSegments('Ж'.repeat(134)).segments).toBe(2);
    expect(countSegments('Ж'.repeat(135)).segments).toBe(3);
  });
});

describe('status table', () => {
  it('maps every message status to one API state, and each state back to its statuses', () => {
    for (const status of MESSAGE_STATUSES) expect(STATE_OF_STATUS[status], status).toBeDefined();
    expect(statusesOfState('FAILED').sort()).toEqual(['bounced', 'cancelled', 'complained', 'expired', 'failed', 'suppressed']);
    expect(statusesOfState('PROCESSING')).toEqual(['sending']);
  });
});
