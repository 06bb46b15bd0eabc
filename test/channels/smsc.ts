import smpp, { type Pdu, type Session } from 'smpp';

/**
 * A real SMPP 3.4 server (the `smpp` package's server side) on 127.0.0.1 playing an SMSC: accepts
 * bind_transceiver with the given credentials, answers submit_sm with a message id, and (unless
 * told otherwise) sends the delivery receipt as a deliver_sm right after. Knobs for the tests:
 * throttle the next N submits, refuse a destination, drop every session.
 */
export interface Submitted {
  messageId: string;
  source: string;
  destination: string;
  text: string;
  registeredDelivery: number;
  dataCoding: number;
  viaPayload: boolean;
}

export interface Smsc {
  url: string;
  submitted: Submitted[];
  /** submit_sm PDUs answered with ESME_RTHROTTLED. */
  throttled: number;
  binds: number;
  throttleNext(n: number): void;
  /** Receipt stat: per destination (default DELIVRD), or 'none' for no receipt. */
  receiptFor: Map<string, string>;
  refuseDestination: Set<string>;
  /** Sends a mobile-originated deliver_sm (an inbound SMS) on the first bound session. */
  sendInbound(from: string, to: string, text: string): void;
  dropSessions(): void;
  close(): Promise<void>;
}

function decode(field: unknown): string {
  if (typeof field === 'string') return field;
  if (field && typeof field === 'object' && 'message' in field) return String((field as { message: unknown }).message);
  return '';
}

export async function startSmsc(credentials = { systemId: 'engine', password: 'secret' }): Promise<Smsc> {
  const sessions = new Set<Session>();
  let toThrottle = 0;
  let seq = 0;
  const state: Omit<Smsc, 'url' | 'close' | 'throttleNext' | 'dropSessions' | 'sendInbound'> = {
    submitted: [], throttled: 0, binds: 0, receiptFor: new Map(), refuseDestination: new Set(),
  };
  const server = smpp.createServer({}, (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
    session.on('error', () => {});
    session.on('bind_transceiver', (pdu: Pdu) => {
      if (pdu.system_id !== credentials.systemId || pdu.password !== credentials.password) {
        session.send(pdu.response({ command_status: smpp.ESME_RBINDFAIL }));
        return session.close();
      }
      state.binds++;
      session.send(pdu.response());
    });
    session.on('enquire_link', (pdu: Pdu) => session.send(pdu.response()));
    session.on('unbind', (pdu: Pdu) => {
      session.send(pdu.response());
      session.close();
    });
    session.on('submit_sm', (pdu: Pdu) => {
      if (toThrottle > 0) {
        toThrottle--;
        state.throttled++;
        return session.send(pdu.response({ command_status: smpp.ESME_RTHROTTLED }));
      }
      if (state.refuseDestination.has(pdu.destination_addr)) return session.send(pdu.response({ command_status: smpp.ESME_RINVDSTADR }));
      const messageId = `smsc-${++seq}`;
      const viaPayload = pdu.message_payload !== undefined;
      state.submitted.push({
        messageId, source: pdu.source_addr, destination: pdu.destination_addr, registeredDelivery: pdu.registered_delivery,
        text: decode(viaPayload ? pdu.message_payload : pdu.short_message), dataCoding: pdu.data_coding, viaPayload,
      });
      session.send(pdu.response({ message_id: messageId }));
      const stat = state.receiptFor.get(pdu.destination_addr) ?? 'DELIVRD';
      if (stat === 'none' || !(pdu.registered_delivery & 1)) return;
      setTimeout(() => {
        session.deliver_sm({
          source_addr: pdu.destination_addr, destination_addr: pdu.source_addr, esm_class: 0x04,
          short_message: `id:${messageId} sub:001 dlvrd:${stat === 'DELIVRD' ? '001' : '000'} submit date:2611301200 done date:2611301200 stat:${stat} err:${stat === 'DELIVRD' ? '000' : '001'} text:`,
        });
      }, 5);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  return Object.assign(state, {
    url: `smpp://${credentials.systemId}:${credentials.password}@127.0.0.1:${port}`,
    throttleNext(n: number) {
      toThrottle = n;
    },
    sendInbound(from: string, to: string, text: string) {
      const [session] = sessions;
      session.deliver_sm({ source_addr: from, destination_addr: to, esm_class: 0, short_message: text });
    },
    dropSessions() {
      for (const s of sessions) s.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sessions) s.destroy();
        server.close(() => resolve());
      }),
  });
}
