import { describe, expect, it } from 'vitest';
import { decodeCacheFile, encodeCacheFile } from '../../src/util/bundle-launch.js';

describe('the code cache file (SHA-1 of bundle and cache, then V8\'s cache)', () => {
  const source = 'module.exports = 1;';
  const payload = Buffer.from('v8 code cache bytes');

  it('gives back V8\'s cache for the bundle it was made for', () => {
    expect(decodeCacheFile(source, encodeCacheFile(source, payload))).toEqual(payload);
  });

  it('refuses it for another bundle of the same length (V8 itself compares only lengths)', () => {
    const other = 'module.exports = 2;';
    expect(other.length).toBe(source.length);
    expect(decodeCacheFile(other, encodeCacheFile(source, payload))).toBeUndefined();
  });

  it('refuses a damaged or cut file', () => {
    const file = encodeCacheFile(source, payload);
    const flipped = Buffer.from(file);
    flipped[flipped.length - 1] = (flipped[flipped.length - 1] as number) ^ 1;
    expect(decodeCacheFile(source, flipped)).toBeUndefined();
    expect(decodeCacheFile(source, file.subarray(0, file.length - 1))).toBeUndefined();
    expect(decodeCacheFile(source, file.subarray(0, 20))).toBeUndefined();
    expect(decodeCacheFile(source, Buffer.alloc(0))).toBeUndefined();
  });
});
