import { describe, expect, it } from 'vitest';
import * as grpcStatus from './grpc-status.js';

const { describeError, describeServiceError, isFinalRefusal, isServiceError, statusName } = grpcStatus;

describe('grpc status helpers', () => {
  it('names status codes, UNKNOWN for anything else', () => {
    expect(statusName(0)).toBe('OK');
    expect(statusName(14)).toBe('UNAVAILABLE');
    expect(statusName(16)).toBe('UNAUTHENTICATED');
    expect(statusName(17)).toBe('UNKNOWN');
    expect(statusName(-1)).toBe('UNKNOWN');
    expect(statusName(1.5)).toBe('UNKNOWN');
    expect(statusName('14')).toBe('UNKNOWN');
    expect(statusName(undefined)).toBe('UNKNOWN');
  });

  it('recognises what a grpc-js call rejects with', () => {
    expect(isServiceError({ code: 14, details: 'No connection established' })).toBe(true);
    expect(isServiceError({ code: 14 })).toBe(false);
    expect(isServiceError({ code: '14', details: 'x' })).toBe(false);
    expect(isServiceError(null)).toBe(false);
    expect(isServiceError('UNAVAILABLE')).toBe(false);
  });

  it('describes a service error by name, an undefined code by number', () => {
    expect(describeServiceError({ code: 7, details: 'a node certificate' })).toBe(
      'PERMISSION_DENIED: a node certificate',
    );
    expect(describeServiceError({ code: 99, details: 'odd' })).toBe('status 99: odd');
  });

  it('describes any error: a service error by status, others by message', () => {
    expect(describeError(Object.assign(new Error('14 UNAVAILABLE: x'), { code: 14, details: 'x' }))).toBe(
      'UNAVAILABLE: x',
    );
    expect(describeError({ code: 99, details: 'odd' })).toBe('UNKNOWN: odd');
    expect(describeError(new Error('boom'))).toBe('boom');
    expect(describeError('plain')).toBe('plain');
    expect(describeError(null)).toBe('null');
  });

  it('tells final refusals from what is worth retrying', () => {
    expect(isFinalRefusal({ code: 3 })).toBe(true);
    expect(isFinalRefusal({ code: 5 })).toBe(true);
    expect(isFinalRefusal({ code: 16 })).toBe(true);
    expect(isFinalRefusal({ code: 14 })).toBe(false);
    expect(isFinalRefusal({ code: 4 })).toBe(false);
    expect(isFinalRefusal(new Error('no code'))).toBe(false);
    expect(isFinalRefusal(null)).toBe(false);
  });
});
