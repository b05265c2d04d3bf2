import { describe, expect, it } from 'vitest';

import { toCommandError } from '../src/api';
import { ERROR_ADVICE, describeError, errorLine, nextStep } from '../src/errors';

describe('error → plain words', () => {
  it('maps the codes to the next step a person can take', () => {
    expect(nextStep('reauthorization_required')).toBe('Reconnect');
    expect(nextStep('provider_unavailable')).toBe('Try again later');
    expect(nextStep('keyring_unavailable')).toBe('Unlock your system keyring');
    expect(nextStep('sandbox_not_running')).toMatch(/^Start the sandbox/);
    expect(Object.keys(ERROR_ADVICE)).toHaveLength(17); // every ErrorCode
  });

  it('builds one line: message, then the next step', () => {
    expect(errorLine({ code: 'reauthorization_required', message: 'The refresh token has expired' })).toBe(
      'The refresh token has expired. Next: Reconnect.',
    );
    expect(errorLine({ code: 'provider_unavailable', message: 'FedEx did not answer.' })).toBe(
      'FedEx did not answer. Next: Try again later.',
    );
    expect(describeError({ code: 'busy', message: '  ' }).message).toBe('Something went wrong.');
  });

  it('normalises whatever a command rejects with into a CommandError', () => {
    expect(toCommandError({ code: 'rate_limited', message: 'Slow down.', detail: 'HTTP 429' })).toEqual({
      code: 'rate_limited',
      message: 'Slow down.',
      detail: 'HTTP 429',
    });
    expect(toCommandError('command refresh not found')).toEqual({
      code: 'internal',
      message: 'command refresh not found',
      detail: null,
    });
    expect(toCommandError({ code: 'made_up', message: 'x' }).code).toBe('internal');
    // Every code of the bindings is known, the newest too.
    expect(toCommandError({ code: 'sandbox_not_running', message: 'The sandbox is not running.' }).code).toBe(
      'sandbox_not_running',
    );
    expect(toCommandError(new Error('boom')).message).toBe('boom');
  });
});
