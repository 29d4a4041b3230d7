/**
 * kafkajs 2.2.4 (its last release) hands read_committed consumers records of aborted transactions
 * when the broker lists several of them out of first-offset order (see
 * test/integration/streams/read-committed-aborted.test.ts). patches/kafkajs+2.2.4.patch fixes it and
 * `npm install` applies it (postinstall: patch-package). An install that skipped scripts would run
 * the unpatched client and apply aborted events as if committed, so every client checks first.
 */
import { createRequire } from 'node:module';
import { ThawError } from '../lib/errors.js';

interface FilterInput {
  messages: { offset: string; key: Buffer | null; batchContext: { producerId: string; inTransaction: boolean } }[];
  abortedTransactions: { firstOffset: string; producerId: string }[];
}

let checked: boolean | undefined;

/** Throws KAFKA_CLIENT_UNPATCHED when kafkajs' aborted-transaction filter is the unpatched one. */
export function assertKafkajsPatched(): void {
  if (checked === undefined) {
    const require = createRequire(import.meta.url);
    const filter = require('kafkajs/src/consumer/filterAbortedMessages.js') as (i: FilterInput) => unknown[];
    // A record of producer 2, whose aborted transaction is listed second although it started first.
    const kept = filter({
      messages: [{ offset: '1', key: null, batchContext: { producerId: '2', inTransaction: true } }],
      abortedTransactions: [
        { firstOffset: '5', producerId: '1' },
        { firstOffset: '0', producerId: '2' },
      ],
    });
    checked = kept.length === 0;
  }
  if (!checked) {
    throw new ThawError(
      'KAFKA_CLIENT_UNPATCHED',
      'kafkajs is not patched: read_committed consumers would see records of aborted transactions; run `npm install` (its postinstall applies patches/kafkajs+2.2.4.patch with patch-package)',
    );
  }
}
