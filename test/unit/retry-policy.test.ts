import test from 'ava';
import { MAX_RETRY_DELAY_MS, retryDelayBounds } from '../../common/retry-policy.js';

test('each retry waits between half of and all of the back-off doubled per retry before it', (t) => {
  t.deepEqual(retryDelayBounds(1000, 0), { min: 500, max: 1000 });
  t.deepEqual(retryDelayBounds(1000, 1), { min: 1000, max: 2000 });
  t.deepEqual(retryDelayBounds(1000, 3), { min: 4000, max: 8000 });
});

test('the wait is capped, however many retries came before', (t) => {
  t.deepEqual(retryDelayBounds(1000, 20), { min: MAX_RETRY_DELAY_MS / 2, max: MAX_RETRY_DELAY_MS });
  t.deepEqual(retryDelayBounds(1000, 5000), { min: MAX_RETRY_DELAY_MS / 2, max: MAX_RETRY_DELAY_MS });
});
